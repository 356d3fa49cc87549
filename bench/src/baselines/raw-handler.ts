/**
 * Every raw loop's handler: the async no-op polyqueue's bench handler is, given the job the loop
 * JSON-parsed from the body first, because a hand-written worker has to read its job.
 */
export const rawHandler = async (_job: unknown): Promise<void> => {};
