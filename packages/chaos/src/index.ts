export { freePort } from '@polyqueue/testkit/net';
export { BROKERS, type BrokerName, type BrokerServer, openBroker } from './broker-servers';
export { type ChaosOptions, commitOf, runChaos } from './chaos-run';
export { LoadClient, type PostedJob } from './load-client';
export { killAllChildren, Service } from './processes';
export {
  type FaultRecord,
  type Redelivery,
  type RunFacts,
  redeliveries,
  type Summary,
  summarize,
  type Transaction,
} from './report';
export { formatReport, tableHeader, tableRow } from './report-text';
export { type SinkDelivery, type SinkTransaction, type SmtpSink, startSmtpSink } from './smtp-sink';
export { snapshotOf } from './snapshot';
