#!/usr/bin/env node
// Entry point of `ops-autopilot` (npx ops-autopilot ...). Runs the TypeScript sources through
// tsx's loader, so the CLI works in the repository without a build step.
import process from 'node:process';
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
