import { defineConfig } from 'tsup';
import { workerBinary } from '../../tsup.shared.js';

export default defineConfig(workerBinary());
