// Validate C2PA manifests with @trustnxt/c2pa-ts, a pure-TypeScript implementation that shares
// no code with the studio's SDK (c2pa-rs). Offline: validation fetches nothing.
// Usage: node validate.mjs FILE...   prints one JSON line per file:
//   {"file", "format", "valid", "active_manifest",
//    "entries": [{"code", "success", "url", "explanation"}]}
import * as fs from 'node:fs/promises';
import { BMFF, JPEG, PNG } from '@trustnxt/c2pa-ts/asset';
import { SuperBox } from '@trustnxt/c2pa-ts/jumbf';
import { ManifestStore, ValidationResult } from '@trustnxt/c2pa-ts/manifest';

// c2pa-ts reads box-based (BMFF) files but lists only the HEIF brands as readable; its BMFF
// hash validation is brand-independent, so the MP4/QuickTime brands the studio writes are added.
for (const brand of ['isom', 'iso2', 'iso4', 'iso5', 'iso6', 'mp41', 'mp42', 'avc1', 'qt  ']) {
    BMFF.canReadBrands.add(brand);
}
const READERS = [['video/mp4', BMFF], ['image/jpeg', JPEG], ['image/png', PNG]];

async function validate(file) {
    const buf = new Uint8Array(await fs.readFile(file));
    const reader = READERS.find(([, kind]) => kind.canRead(buf));
    if (!reader) return { file, format: null, valid: false, entries: [], error: 'unsupported format' };
    const [format, Kind] = reader;
    const asset = new Kind(buf);
    const jumbf = asset.getManifestJUMBF();
    if (!jumbf) return { file, format, valid: false, entries: [], error: 'no manifest' };
    let result;
    let active = null;
    try {
        const store = ManifestStore.read(SuperBox.fromBuffer(jumbf));
        active = store.getActiveManifest()?.label ?? null;
        result = await store.validate(asset);
    } catch (e) {
        result = ValidationResult.fromError(e);
    }
    const entries = result.statusEntries.map(e => ({
        code: e.code,
        success: e.success,
        url: e.url ?? null,
        explanation: e.explanation ?? null,
    }));
    return { file, format, valid: result.isValid, active_manifest: active, entries };
}

for (const file of process.argv.slice(2)) {
    console.log(JSON.stringify(await validate(file)));
}
