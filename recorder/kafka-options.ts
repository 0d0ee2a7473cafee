// What the CLI needs to define the Kafka commands' options, in a module that does not load
// kafkajs: the CLI loads kafkajs (sources/kafka.ts, ingest.ts) only when a command uses Kafka,
// which keeps every other command's start quick.

/** How a Kafka record's value holds its event: JSON ({"type","payload"}), or the engine codec's bytes. */
export const VALUE_FORMATS = ['json', 'codec'] as const;
export type ValueFormat = (typeof VALUE_FORMATS)[number];

/** `ingest`'s channel between the consumer and the engine, in events. */
export const DEFAULT_CHANNEL_CAPACITY = 1024;

/** How long closing a Kafka source waits for the group to take the tape's last position before it leaves anyway (with a warning). */
export const FINAL_COMMIT_WAIT_MS = 10_000;
/** How long closing a Kafka source then waits for the consumer to leave the group and disconnect (with a warning). */
export const LEAVE_WAIT_MS = 5_000;
