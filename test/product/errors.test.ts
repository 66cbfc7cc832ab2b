/**
 * The helpers production code uses instead of casting a caught value (`errorMessage`,
 * `errorCode`), and what a run record keeps of an error: the status only of the client
 * layer's typed errors, never one read off an arbitrary object.
 */
import { describe, expect, it } from 'vitest';
import { ResourceNotFoundError } from '../../src/azure/errors.ts';
import { errorCode, errorMessage } from '../../src/errors.ts';
import { toErrorRecord } from '../../src/runs/run-record.ts';

describe('errorMessage and errorCode', () => {
  it('read any thrown value without assuming it is an Error', () => {
    const enoent = Object.assign(new Error('no such file'), { code: 'ENOENT' });
    expect(errorCode(enoent)).toBe('ENOENT');
    expect(errorMessage(enoent)).toBe('no such file');
    expect(errorCode('boom')).toBeUndefined();
    expect(errorMessage('boom')).toBe('boom');
    expect(errorCode({ code: 42 })).toBeUndefined();
    expect(errorCode(undefined)).toBeUndefined();
    expect(errorMessage(undefined)).toBe('unknown error');
  });
});

describe('toErrorRecord', () => {
  it('keeps the status and code of a typed Azure error', () => {
    const error = new ResourceNotFoundError('get web app on /x failed: expected the resource to exist, found HTTP 404', {
      resourceId: '/x',
      operation: 'get web app',
      statusCode: 404,
      code: 'ResourceNotFound',
      requestId: undefined,
    });
    expect(toErrorRecord(error)).toMatchObject({ name: 'ResourceNotFoundError', code: 'ResourceNotFound', statusCode: 404 });
  });

  it('does not take a status from an object that merely has a statusCode field', () => {
    const record = toErrorRecord({ statusCode: 404, code: 'Whatever', message: 'not an Azure error' });
    expect(record.statusCode).toBeUndefined();
    expect(record.code).toBe('Whatever');
  });
});
