import { describe, expect, it } from 'vitest';
import {
  acceptedJobSchemas,
  jobSchemas,
  sendEmailPayloadAcceptedSchema,
  sendEmailPayloadSchema,
} from '../src/index';

describe('send_email: what new producers must write, what the worker accepts', () => {
  it('demands a subject and one of body, html or template of new producers (the HTTP API)', () => {
    expect(jobSchemas.send_email).toBe(sendEmailPayloadSchema);
    const noBody = sendEmailPayloadSchema.safeParse({ to: 'user@example.com', subject: 'Welcome' });
    expect(noBody.success).toBe(false);
    expect(noBody.error?.issues.map((i) => i.path.join('.'))).toEqual(['body']);
    const noSubject = sendEmailPayloadSchema.safeParse({ to: 'user@example.com', body: 'x' });
    expect(noSubject.error?.issues.map((i) => i.path.join('.'))).toEqual(['subject']);
  });

  it.each([
    // The seed article's Q4M row, and its Python producers' payload.
    [
      { to: 'user@example.com', subject: 'Welcome' },
      { to: 'user@example.com', subject: 'Welcome', body: '' },
    ],
    [{ to: 'user@example.com' }, { to: 'user@example.com', subject: '', body: '' }],
    // PHP's json_encode of an unset value.
    [
      { to: 'user@example.com', subject: null, body: null },
      { to: 'user@example.com', subject: '', body: '' },
    ],
    // html or a template alone adds no empty text part.
    [
      { to: 'user@example.com', html: '<p>x</p>' },
      { to: 'user@example.com', subject: '', html: '<p>x</p>' },
    ],
    [
      { to: ['a@example.com', 'b@example.com'], subject: 'Hi', template: 'welcome', vars: { name: 'Ada' } },
      { to: ['a@example.com', 'b@example.com'], subject: 'Hi', template: 'welcome', vars: { name: 'Ada' } },
    ],
    [
      { to: 'user@example.com', subject: 'Hi', body: 'Hello' },
      { to: 'user@example.com', subject: 'Hi', body: 'Hello' },
    ],
  ])('the worker reads %j as %j', (input, output) => {
    expect(acceptedJobSchemas.send_email).toBe(sendEmailPayloadAcceptedSchema);
    expect(sendEmailPayloadAcceptedSchema.parse(input)).toEqual(output);
  });

  it.each([
    [{ subject: 'Hello' }, 'to'],
    [{ to: 'not an address' }, 'to'],
    [{ to: 'user@example.com', subject: 42 }, 'subject'],
    [{ to: 'user@example.com', body: 'x'.repeat(1_000_001) }, 'body'],
  ])('still refuses %j (field %s), as the article workers failed without a recipient', (input, field) => {
    const parsed = sendEmailPayloadAcceptedSchema.safeParse(input);
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]?.path.join('.')).toBe(field);
  });
});
