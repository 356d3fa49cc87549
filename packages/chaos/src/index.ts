export { BROKERS, type BrokerName, type BrokerServer, openBroker } from './broker-servers';
export { type ChaosOptions, commitOf, runChaos } from './chaos-run';
export { LoadClient, type PostedJob } from './load-client';
export { freePort, killAllChildren, Service } from './processes';
export { type FaultRecord, formatReport, type RunFacts, type Summary, summarize, tableRow } from './report';
export { type SinkDelivery, type SmtpSink, startSmtpSink } from './smtp-sink';
export { snapshotOf } from './snapshot';
