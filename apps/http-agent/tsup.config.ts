import { defineConfig } from 'tsup';
import { binary } from '../../tsup.shared.js';

export default defineConfig(binary());
