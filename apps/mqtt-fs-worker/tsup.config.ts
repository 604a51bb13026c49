import { defineConfig } from 'tsup';
import { lightBinary } from '../../tsup.shared.js';

export default defineConfig(lightBinary());
