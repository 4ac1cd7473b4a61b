#!/usr/bin/env node
// Interop harness for reservoir's did:plc code (plc/interop_test.go runs it).
//
//   node plc-interop.js generate   operations, DIDs and CIDs made by @did-plc/lib, as JSON
//   node plc-interop.js verify     reads {cases: [{name, did, ops, createdAt?}]} on stdin and
//                                  reports what @did-plc/lib computes and accepts, as JSON
//   node plc-interop.js serve      runs the reference directory (@did-plc/server, in-memory
//                                  database) on 127.0.0.1, prints {"port": N}, stops when
//                                  stdin closes
//
// Everything printed on stdout is one JSON document (serve: one line).
'use strict'

const plc = require('@did-plc/lib')
const crypto = require('@atproto/crypto')

// The curve orders, for canonicalizing signatures to low-S.
const ORDER = {
  ES256: BigInt('0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551'),
  ES256K: BigInt('0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141'),
}

const toHex = (b) => Buffer.from(b).toString('hex')
const fromBig = (n) => Buffer.from(n.toString(16).padStart(64, '0'), 'hex')

// setS returns the signature with s replaced by its low (or high) form.
const setS = (sig, alg, high) => {
  const n = ORDER[alg]
  let s = BigInt('0x' + toHex(sig.subarray(32)))
  const isHigh = s > n / 2n
  if (isHigh !== high) s = n - s
  return new Uint8Array(Buffer.concat([Buffer.from(sig.subarray(0, 32)), fromBig(s)]))
}

// lowS wraps a keypair so it signs as the did:plc spec requires. The
// library's P-256 keypair (WebCrypto) returns a random S half the time;
// its K-256 keypair already normalizes.
const lowS = (kp) => ({
  jwtAlg: kp.jwtAlg,
  did: () => kp.did(),
  sign: async (msg) => setS(await kp.sign(msg), kp.jwtAlg, false),
})

const newKey = async (curve) =>
  lowS(curve === 'p256' ? await crypto.EcdsaKeypair.create() : await crypto.Secp256k1Keypair.create())

const cidOf = async (op) => (await plc.getLastOpWithCid([op])).cid

async function generate() {
  const cases = []

  // A full life for each curve: genesis, one update of each kind, a key
  // rotation, then a tombstone by the new key.
  for (const curve of ['k256', 'p256']) {
    const rotation = await newKey(curve)
    const signing = await newKey(curve)
    const { op: genesis, did } = await plc.createOp({
      signingKey: signing.did(),
      handle: `${curve}.test`,
      pds: 'https://pds.example.com',
      rotationKeys: [rotation.did()],
      signer: rotation,
    })
    const ops = [genesis]
    ops.push(await plc.updateHandleOp(ops.at(-1), rotation, `renamed-${curve}.test`))
    ops.push(await plc.updatePdsOp(ops.at(-1), rotation, 'https://other-pds.example.com'))
    ops.push(await plc.updateAtprotoKeyOp(ops.at(-1), rotation, (await newKey(curve)).did()))
    const next = await newKey(curve === 'k256' ? 'p256' : 'k256')
    ops.push(await plc.updateRotationKeysOp(ops.at(-1), rotation, [next.did(), rotation.did()]))
    ops.push(await plc.tombstoneOp(await cidOf(ops.at(-1)), next))
    cases.push({ name: curve, did, ops, nullified: [] })
  }

  // Recovery: the genesis lists a K-256 recovery key before a P-256
  // rotation key; the rotation key updates; the recovery key forks at the
  // genesis, nullifying that update.
  {
    const recovery = await newKey('k256')
    const rotation = await newKey('p256')
    const { op: genesis, did } = await plc.createOp({
      signingKey: rotation.did(),
      handle: 'recover.test',
      pds: 'https://pds.example.com',
      rotationKeys: [recovery.did(), rotation.did()],
      signer: rotation,
    })
    const hijack = await plc.updateHandleOp(genesis, rotation, 'hijacked.test')
    const fix = await plc.updateRotationKeysOp(genesis, recovery, [recovery.did()])
    cases.push({ name: 'recovery', did, ops: [genesis, hijack, fix], nullified: [1] })
  }

  // The legacy genesis format, then a regular update.
  {
    const signing = await newKey('k256')
    const recovery = await newKey('p256')
    const legacy = await plc.deprecatedSignCreate(
      {
        type: 'create',
        signingKey: signing.did(),
        recoveryKey: recovery.did(),
        handle: 'legacy.test',
        service: 'https://pds.example.com',
        prev: null,
      },
      recovery,
    )
    const did = await plc.didForCreateOp(legacy)
    const update = await plc.updateHandleOp(legacy, signing, 'legacy2.test')
    cases.push({ name: 'legacy', did, ops: [legacy, update], nullified: [] })
  }

  // The library checks its own output: every active log validates.
  for (const c of cases) {
    const active = c.ops.filter((_, i) => !c.nullified.includes(i))
    await plc.validateOperationLog(c.did, active)
    c.cids = []
    for (const op of c.ops) c.cids.push((await cidOf(op)).toString())
  }

  // A P-256 genesis whose signature is flipped to high S (still a valid
  // ECDSA signature). The spec requires refusing it; this library accepts it.
  const p = await newKey('p256')
  const { op: lowGenesis } = await plc.createOp({
    signingKey: p.did(),
    handle: 'high-s.test',
    pds: 'https://pds.example.com',
    rotationKeys: [p.did()],
    signer: p,
  })
  const sig = Buffer.from(lowGenesis.sig, 'base64url')
  const highGenesis = { ...lowGenesis, sig: Buffer.from(setS(sig, 'ES256', true)).toString('base64url') }
  const highDid = await plc.didForCreateOp(highGenesis)
  let libraryAccepts = true
  try {
    await plc.validateOperationLog(highDid, [highGenesis])
  } catch (err) {
    libraryAccepts = false
  }

  return {
    library: {
      '@did-plc/lib': require('@did-plc/lib/package.json').version,
      '@atproto/crypto': require('@atproto/crypto/package.json').version,
    },
    cases,
    highS: { did: highDid, op: highGenesis, libraryAccepts },
  }
}

const errorText = (err) => `${err.constructor.name}: ${err.message}`

async function verify(input) {
  const results = []
  for (const c of input.cases) {
    const r = { name: c.name, cids: [], accepted: [], errors: [], logValid: false, logError: '' }
    try {
      r.did = await plc.didForCreateOp(c.ops[0])
    } catch (err) {
      r.did = ''
    }
    // Replay through assureValidNextOp, the directory's check, keeping
    // nullified operations out of the history as the directory does.
    const history = []
    for (let i = 0; i < c.ops.length; i++) {
      const op = c.ops[i]
      const cid = await cidOf(op)
      r.cids.push(cid.toString())
      try {
        const { nullified } = await plc.assureValidNextOp(c.did, history.filter((h) => !h.nullified), op)
        for (const h of history) if (nullified.some((n) => n.equals(h.cid))) h.nullified = true
        history.push({ did: c.did, operation: op, cid, nullified: false, createdAt: new Date() })
        r.accepted.push(true)
        r.errors.push('')
      } catch (err) {
        r.accepted.push(false)
        r.errors.push(errorText(err))
      }
    }
    r.nullified = history.map((h) => h.nullified)
    try {
      await plc.validateOperationLog(c.did, history.filter((h) => !h.nullified).map((h) => h.operation))
      r.logValid = history.length > 0
    } catch (err) {
      r.logError = errorText(err)
    }
    results.push(r)
  }
  return { results }
}

async function serve() {
  const { PlcServer, Database } = require('@did-plc/server')
  const server = PlcServer.create({ db: Database.mock(), port: 0, version: 'reference' })
  const http = await server.start()
  process.stdout.write(JSON.stringify({ port: http.address().port }) + '\n')
  process.stdin.resume()
  await new Promise((resolve) => process.stdin.on('end', resolve).on('close', resolve))
  await server.destroy()
}

const readStdin = () =>
  new Promise((resolve, reject) => {
    const chunks = []
    process.stdin.on('data', (c) => chunks.push(c))
    process.stdin.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    process.stdin.on('error', reject)
  })

async function main() {
  const mode = process.argv[2]
  if (mode === 'generate') {
    process.stdout.write(JSON.stringify(await generate()) + '\n')
  } else if (mode === 'verify') {
    process.stdout.write(JSON.stringify(await verify(JSON.parse(await readStdin()))) + '\n')
  } else if (mode === 'serve') {
    await serve()
  } else {
    throw new Error('usage: plc-interop.js generate|verify|serve')
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err)
    process.exit(1)
  },
)
