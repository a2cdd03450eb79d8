/**
 * The ReMemR1 agent core: pure functions and plain data, no I/O and no Node built-ins, safe to import
 * from Temporal workflow code.
 */
export * from './advantages';
export * from './boxed';
export * from './errors';
export * from './metrics';
export * from './metrics-official';
export * from './mode';
export * from './prompts';
export * from './retrieval';
export * from './rewards';
export * from './tags';
export * from './text';
