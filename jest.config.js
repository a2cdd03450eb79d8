/** Jest runs TypeScript through SWC (types are checked separately by `npm run typecheck`). */
/** @type {import('jest').Config} */
module.exports = {
  // The node environment, with the process's typed arrays shared so onnxruntime-node's outputs pass instanceof.
  testEnvironment: '<rootDir>/test/setup/shared-typed-arrays-environment.ts',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    // hyparquet ships ES modules only, so it is transformed along with the project's code.
    '^.+\\.(t|m?j)s$': ['@swc/jest', { jsc: { target: 'es2022' }, module: { type: 'commonjs' } }],
  },
  transformIgnorePatterns: ['/node_modules/(?!(hyparquet|hyparquet-writer)/)'],
  globalSetup: '<rootDir>/test/setup/global-setup.ts',
  globalTeardown: '<rootDir>/test/setup/global-teardown.ts',
  reporters: ['default', '<rootDir>/test/setup/summary-reporter.js'],
  testTimeout: 120000,
  maxWorkers: 2,
};
