export { createSandbox, type Sandbox, waitFor } from './sandbox.js';
export { type ConformanceHarness, describeTransportConformance } from './transport-suite.js';
