export { BROKERS, type BrokerName, type BrokerServer, openBroker } from './broker-servers';
export { type ChaosOptions, commitOf, runChaos } from './chaos-run';
export { LoadClient, type PostedJob } from './load-client';
export { freePort, killAllChildren, Service } from './processes';
export {
  type FaultRecord,
  formatReport,
  type Redelivery,
  type RunFacts,
  redeliveries,
  type Summary,
  summarize,
  type Transaction,
  tableHeader,
  tableRow,
} from './report';
export { type SinkDelivery, type SinkTransaction, type SmtpSink, startSmtpSink } from './smtp-sink';
export { snapshotOf } from './snapshot';
