// Loaded with `node --import`: makes `chdb` unresolvable, as on a platform with no chdb build, to
// show that server mode never loads it.
import { register } from 'node:module';

register(
  'data:text/javascript,' +
    encodeURIComponent(`export async function resolve(specifier, context, next) {
  if (specifier === 'chdb' || specifier.startsWith('chdb/')) {
    throw Object.assign(new Error("Cannot find package 'chdb' (blocked by test/helpers/without-chdb.mjs)"), { code: 'ERR_MODULE_NOT_FOUND' });
  }
  return next(specifier, context);
}`),
);
