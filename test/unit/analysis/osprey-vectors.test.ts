import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { detectControlSystemOperations } from '../../../src/analysis/index.js';

// Osprey's published test vectors (shared/reference/osprey-notes.md §3.3), verbatim.
const mustWrite = [
  "caput('PV', 42)",
  "epics.caput('BEAM:CURRENT', 500.0)",
  "write_channel('PV', 42)",
  "write_channel('BEAM:CURRENT', 500.0)",
  "from osprey.runtime import write_channel\nwrite_channel('PV', 42)",
  "from osprey.runtime import write_channels\nwrite_channels({'PV': 42})",
  "connector.write_channel('PV', 42)",
  "pv = epics.PV('BEAM:CURRENT')\npv.put(500.0)",
  "from epics import caget, caput\nvalue = caget('PV:READ')\ncaput('PV:WRITE', value)",
  "current = epics.caget('BEAM:CURRENT')\nif current < 400:\n    epics.caput('ALARM:STATUS', 1)",
  "import p4p.client.thread\np4p.client.thread.Context('pva').put('SR:BEND:SP', 1.5)",
  "import p4p.client.asyncio\nawait p4p.client.asyncio.Context('pva').put('SR:BEND:SP', 1.5)",
  "import p4p.client.cothread\np4p.client.cothread.Context('pva').put('SR:BEND:SP', 1.5)",
  "import p4p.client.thread\nctxt = p4p.client.thread.Context('pva')\nctxt.put(['SR:A:SP', 'SR:B:SP'], [1.0, 2.0])",
  "from p4p.client.thread import Context\nctxt = Context('pva')\nctxt.put('SR:A:SP', 1)",
  "import p4p.client.thread\nreply = p4p.client.thread.Context('pva').rpc('SR:CALC', args)",
  "from p4p.client.asyncio import Context\nctxt = Context('pva')\nreply = await ctxt.rpc('SR:CALC', args)",
  "from p4p.server.thread import SharedPV\nfrom p4p.nt import NTScalar\npv = SharedPV(nt=NTScalar('d'), initial=0.0)",
  'import p4p.server.thread\npv = p4p.server.thread.SharedPV()\npv.post(42.0)',
  "import requests\nfrom p4p.client.thread import Context\nval = Context('pva').get('SR:CURRENT')\nrequests.post('https://example.org/api', json={'v': val})",
];
const mustReadOnly = [
  "value = caget('PV')",
  "value = epics.caget('BEAM:CURRENT')",
  "value = read_channel('PV')",
  "value = read_channel('BEAM:CURRENT')",
  "pv = epics.PV('BEAM:CURRENT')\nvalue = pv.get()",
  "from p4p.client.thread import Context\nctxt = Context('pva')",
  "import p4p.client.thread\nval = p4p.client.thread.Context('pva').get('SR:CURRENT')",
  "import p4p.client.asyncio\nsub = p4p.client.asyncio.Context('pva').monitor('SR:IMAGE', cb)",
  "from p4p.client.cothread import Context\nctxt = Context('pva')\nsub = ctxt.monitor('SR:IMAGE', cb)",
];
const mustDetectNothing = [
  'import numpy as np\nresult = np.mean([1, 2, 3])',
  'import numpy as np\ndata = np.array([1, 2, 3])\nprint(data.mean())',
  "import numpy as np\ndata = np.array([1, 2, 3])\nmean = np.mean(data)\nresults = {'mean': mean}",
  "import requests\nrequests.post('https://example.org/api', json=payload)",
  "resp = session.post(url, data={'run': 12})",
  "import numpy as np\nmean = np.mean(samples)\nprint(f'mean={mean:.3f}')",
  'import ssl\nctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)',
];

describe("Osprey's published vectors", () => {
  describe('must detect a write', () => {
    for (const code of mustWrite) {
      it(`detects a write in ${JSON.stringify(code)}`, async () => {
        const r = await detectControlSystemOperations(code);
        assert.equal(r.has_writes, true, JSON.stringify(r));
        assert.ok(r.detected_patterns.writes.length > 0);
      });
    }
    it('sets both writes and reads for caget + caput', async () => {
      const r = await detectControlSystemOperations(mustWrite[8]!);
      assert.equal(r.has_writes, true);
      assert.equal(r.has_reads, true);
      assert.equal(r.control_system_type, 'epics');
    });
  });

  describe('must detect reads only', () => {
    for (const code of mustReadOnly) {
      it(`detects a read and no write in ${JSON.stringify(code)}`, async () => {
        const r = await detectControlSystemOperations(code);
        assert.equal(r.has_writes, false, JSON.stringify(r));
        assert.equal(r.has_reads, true, JSON.stringify(r));
      });
    }
  });

  describe('must detect nothing', () => {
    for (const code of mustDetectNothing) {
      it(`detects nothing in ${JSON.stringify(code)}`, async () => {
        const r = await detectControlSystemOperations(code);
        assert.equal(r.has_writes, false, JSON.stringify(r));
        assert.equal(r.has_reads, false, JSON.stringify(r));
      });
    }
  });

  it('detects write_channel whatever the control-system type (epics, mock)', async () => {
    for (const type of ['epics', 'mock']) {
      const r = await detectControlSystemOperations("write_channel('PV', 42)", { controlSystemType: type });
      assert.equal(r.has_writes, true);
      assert.equal(r.control_system_type, type);
    }
  });

  describe('custom patterns', () => {
    const patterns = { write: ['my_facility_write\\('], read: ['my_facility_read\\('] };
    it('override: the custom write is found and epics.caput is no longer a write', async () => {
      const custom = await detectControlSystemOperations("my_facility_write('CH1', 10)", {
        patterns: { ...patterns, mode: 'override' },
      });
      assert.equal(custom.has_writes, true);
      assert.deepEqual(custom.detected_patterns.writes, ['pattern:my_facility_write\\(']);
      const builtin = await detectControlSystemOperations("epics.caput('PV', 1.0)", {
        patterns: { ...patterns, mode: 'override' },
      });
      assert.equal(builtin.has_writes, false);
    });
    it('extend: both are writes, with at least two write patterns', async () => {
      const r = await detectControlSystemOperations("my_facility_write('CH1', 10)\nepics.caput('PV', 1.0)", {
        patterns: { ...patterns, mode: 'extend' },
      });
      assert.equal(r.has_writes, true);
      assert.ok(r.detected_patterns.writes.length >= 2, JSON.stringify(r));
      assert.ok(r.detected_patterns.writes.includes('epics.caput'));
    });
  });
});
