export {
  badSetting,
  longFlag,
  nonEmpty,
  parseBoolean,
  parseDuration,
  parseValue,
  typeOf,
} from './parse.js';
export {
  type DurationUnit,
  defineOptions,
  type InferOptions,
  type Option,
  type OptionSpec,
  type OptionTable,
  type OptionType,
  option,
  type ValueOf,
} from './spec.js';
