import { describe, expect, it } from 'vitest';
import {
  acceptedJobSchemas,
  isJobType,
  jobQueues,
  jobSchemas,
  processImagePayloadSchema,
  queueForJobType,
} from '../src/index';

describe('the job catalogue', () => {
  it('gives every job type a strict schema, an accepted schema and a queue', () => {
    const types = Object.keys(jobSchemas).sort();
    expect(types).toEqual(['process_image', 'send_email']);
    expect(Object.keys(acceptedJobSchemas).sort()).toEqual(types);
    expect(Object.keys(queueForJobType).sort()).toEqual(types);
  });

  it('routes send_email to email and process_image to image, the queue names of the wire format', () => {
    expect(queueForJobType).toEqual({ send_email: 'email', process_image: 'image' });
  });

  it('lists each queue once, in catalogue order', () => {
    expect(jobQueues).toEqual(['email', 'image']);
  });

  it('knows its own types only, not inherited object keys', () => {
    expect(isJobType('send_email')).toBe(true);
    expect(isJobType('resize_video')).toBe(false);
    expect(isJobType('toString')).toBe(false);
    expect(isJobType('__proto__')).toBe(false);
  });

  it('accepts process_image as strictly as the API: a path may not leave the storage root', () => {
    expect(acceptedJobSchemas.process_image).toBe(processImagePayloadSchema);
    for (const path of ['/etc/passwd', 'uploads/../../secret', 'a\0b'])
      expect(processImagePayloadSchema.safeParse({ path }).success).toBe(false);
    expect(processImagePayloadSchema.safeParse({ path: 'uploads/j1/original.jpg' }).success).toBe(true);
  });
});
