import { NonRetryableError } from '@polyqueue/core';

/** A rendered template: the plain-text and HTML parts of the message. */
export interface RenderedTemplate {
  text: string;
  html: string;
}

type Vars = Record<string, unknown>;
type Template = (vars: Vars) => RenderedTemplate;

/**
 * The templates a send_email job may name. Each takes `vars` and renders both parts; values
 * are HTML-escaped in the HTML part. Add one by adding a function here.
 */
export const templates: Record<string, Template> = {
  welcome(vars) {
    const name = text(vars.name, 'there');
    const product = text(vars.product, 'polyqueue');
    const url = optionalUrl(vars.url);
    return {
      text: [
        `Hi ${name},`,
        '',
        `Welcome to ${product}! Your account is ready.`,
        ...(url ? ['', `Get started: ${url}`] : []),
        '',
        `— The ${product} team`,
        '',
      ].join('\n'),
      html: [
        '<!doctype html>',
        '<html><body style="font-family: sans-serif">',
        `<p>Hi ${escapeHtml(name)},</p>`,
        `<p>Welcome to <strong>${escapeHtml(product)}</strong>! Your account is ready.</p>`,
        ...(url ? [`<p><a href="${escapeHtml(url)}">Get started</a></p>`] : []),
        `<p>— The ${escapeHtml(product)} team</p>`,
        '</body></html>',
        '',
      ].join('\n'),
    };
  },
};

/** Renders a named template; an unknown name can never succeed, so it is not retried. */
export function renderTemplate(name: string, vars: Vars = {}): RenderedTemplate {
  const template = Object.hasOwn(templates, name) ? templates[name] : undefined;
  if (!template) {
    throw new NonRetryableError(
      `unknown email template "${name}"; known: ${Object.keys(templates).join(', ')}`,
    );
  }
  return template(vars);
}

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function text(value: unknown, fallback: string): string {
  return typeof value === 'string' && value.trim() !== ''
    ? value.trim()
    : typeof value === 'number'
      ? String(value)
      : fallback;
}

function optionalUrl(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  try {
    const url = new URL(value);
    return url.protocol === 'https:' || url.protocol === 'http:' ? url.toString() : undefined;
  } catch {
    return undefined;
  }
}
