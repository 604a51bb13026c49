// The declarations and their parsing live in @jw/options, so transports can declare their
// flags without depending on this package (commander, pino).
export {
  badSetting,
  type DurationUnit,
  defineOptions,
  type InferOptions,
  longFlag,
  nonEmpty,
  type Option,
  type OptionSpec,
  type OptionTable,
  type OptionType,
  option,
  parseBoolean,
  parseDuration,
  parseValue,
  typeOf,
  type ValueOf,
} from '@jw/options';
