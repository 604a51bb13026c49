import { defineConfig } from 'tsup';
import { binary, lightCore } from '../../tsup.shared.js';

export default defineConfig({ ...binary(), esbuildPlugins: [lightCore] });
