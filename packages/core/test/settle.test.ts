import { describe, expect, it } from 'vitest';
import { AlreadySettledError } from '../src/settle';

describe('AlreadySettledError', () => {
  it('names the delivery and the refused outcome, and is told apart by class and name', () => {
    const error = new AlreadySettledError('job-1', 'retry');
    expect(error).toBeInstanceOf(Error);
    expect(error).toBeInstanceOf(AlreadySettledError);
    expect(error.name).toBe('AlreadySettledError');
    expect(error.messageId).toBe('job-1');
    expect(error.outcome).toBe('retry');
    expect(error.message).toBe('delivery job-1 is already settled; retry() refused');
    expect(String(error)).toBe('AlreadySettledError: delivery job-1 is already settled; retry() refused');
  });
});
