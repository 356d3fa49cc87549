import { z } from 'zod';

export const imageVariantSchema = z.object({
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, 'lower-case letters, digits, - and _ (at most 32)'),
  width: z.number().int().min(1).max(8192),
  height: z.number().int().min(1).max(8192).optional(),
  fit: z.enum(['cover', 'contain', 'fill', 'inside', 'outside']).optional(),
  format: z.enum(['webp', 'jpeg', 'png', 'avif']).optional(),
  quality: z.number().int().min(1).max(100).optional(),
});

export type ImageVariant = z.infer<typeof imageVariantSchema>;

/** The variants made when a process_image job names none. */
export const DEFAULT_IMAGE_VARIANTS: readonly ImageVariant[] = [
  { name: 'thumbnail', width: 256, height: 256, fit: 'cover', format: 'webp' },
  { name: 'medium', width: 1024, fit: 'inside', format: 'webp' },
];

/** process_image: `path` is relative to the storage root and may not leave it. */
export const processImagePayloadSchema = z.object({
  path: z
    .string()
    .min(1)
    .max(500)
    .refine((p) => !p.startsWith('/') && !p.split(/[\\/]/).includes('..') && !p.includes('\0'), {
      message: 'must be a relative path inside the storage root (no leading / and no ..)',
    }),
  variants: z
    .array(imageVariantSchema)
    .min(1)
    .max(10)
    .refine((vs) => new Set(vs.map((v) => v.name)).size === vs.length, {
      message: 'variant names must be unique',
    })
    .optional(),
});

export type ProcessImagePayload = z.infer<typeof processImagePayloadSchema>;
