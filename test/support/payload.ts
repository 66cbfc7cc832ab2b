/**
 * Test helpers for the alert and event intakes.
 */
import { PayloadError } from '../../src/intake/payload.ts';

/** The PayloadError a parse throws (fails the test when it parses or throws something else). */
export function payloadErrorOf(parse: () => unknown): PayloadError {
  try {
    parse();
  } catch (error) {
    if (error instanceof PayloadError) return error;
    throw error;
  }
  throw new Error('expected a PayloadError, the payload parsed');
}
