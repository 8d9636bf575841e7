// dl_check.js URI... - each URI checked by an implementation of GS1
// Digital Link that is not ours (digital-link.js, pinned in
// package-lock.json): one JSON line per URI, {uri, valid, gtin, lot,
// serial}, or {uri, error}.
'use strict';
const { DigitalLink } = require('digital-link.js');

for (const uri of process.argv.slice(2)) {
  try {
    const dl = DigitalLink(uri);
    const q = dl.getKeyQualifiers();
    console.log(JSON.stringify({
      uri, valid: dl.isValid(), gtin: dl.getIdentifier()['01'] || null,
      lot: q['10'] || null, serial: q['21'] || null,
    }));
  } catch (e) {
    console.log(JSON.stringify({ uri, error: String(e.message || e) }));
  }
}
