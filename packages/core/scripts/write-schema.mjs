// Writes dist/job.schema.json from the zod schema, so editors and controllers can validate job.json.
import { writeFileSync } from 'node:fs';
import { jobJsonSchema } from '../dist/index.js';

const schema = {
  $id: 'https://jw.dev/schemas/job.schema.json',
  title: 'jw job.json',
  ...jobJsonSchema(),
};
writeFileSync(
  new URL('../dist/job.schema.json', import.meta.url),
  `${JSON.stringify(schema, null, 2)}\n`,
);
