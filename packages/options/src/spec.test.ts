import { describe, expect, expectTypeOf, it } from 'vitest';
import { defineOptions, type InferOptions, option } from './index.js';

const table = defineOptions({
  url: option.string({ flags: '-u, --url <url>', env: 'P_URL', default: 'x://h', description: '' }),
  user: option.string({ flags: '--user <name>', description: '' }),
  version: option.choice(['5', '4'], { flags: '--v <v>', default: '5', description: '' }),
  wait: option.duration({ flags: '--wait <d>', unit: 's', default: '30', description: '' }),
  max: option.int({ flags: '--max <n>', min: -1, description: '' }),
  clean: option.flag({ flags: '--clean', description: '' }),
  tags: option.list({ flags: '--tags <t>', description: '' }),
  // A plain literal, as tables were written before the helpers.
  plain: { flags: '--plain <n>', type: 'int', default: 3, description: '' },
});

describe('option tables', () => {
  it('give the parsed type of each option', () => {
    expectTypeOf<InferOptions<typeof table>>().toEqualTypeOf<{
      url: string;
      user: string | undefined;
      version: '5' | '4';
      wait: number;
      max: number | undefined;
      clean: boolean;
      tags: string[] | undefined;
      plain: number;
    }>();
  });

  it('give the spec the parser reads', () => {
    expect(table.wait).toEqual({
      flags: '--wait <d>',
      unit: 's',
      default: '30',
      description: '',
      type: 'duration',
    });
    expect(table.version.choices).toEqual(['5', '4']);
    // A flag is false unless given, and says so in --help.
    expect(table.clean.default).toBe(false);
    expect(table.clean.type).toBe('boolean');
  });
});
