#!/usr/bin/env node
// Runs the TypeScript CLI directly (tsx compiles on the fly), so `npx rememr1` works without a build step.
require('tsx/cjs');
require('./main.ts').runCli(process.argv);
