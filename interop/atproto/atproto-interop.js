#!/usr/bin/env node
// Interop harness for reservoir's repositories and firehose, on the reference
// TypeScript libraries (@atproto/repo 0.8.13, @atproto/sync 0.1.40,
// @atproto/identity 0.4.12, @atproto/crypto 0.4.5, pinned in package.json and
// package-lock.json). interop/interop_test.go runs it; every mode reads one
// JSON document on stdin and prints one on stdout (firehose: JSON lines).
//
//   keys           {count} -> {keys: [{privateKey, multibase, didKey}]}: new K-256 keys
//   build          {outDir, repos: [{name, did, privateKey}]} -> {repos: [manifest]}:
//                  builds repositories with @atproto/repo, writes their CARs and blobs
//   verify-proofs  {plcUrl, did, proofs: [{collection, rkey, cid|null, car}]} ->
//                  {key, results: [{verified, error}]}: sync.getRecord CARs checked
//                  with verifyProofs against the key the directory gives
//   check-repo     {plcUrl, did, car, records: [{collection, rkey, record}]} ->
//                  {problems: [...], ...}: a getRepo CAR verified and walked, its
//                  records compared with what was written, its MST rebuilt
//   firehose       {service, plcUrl, cursor?} (one line) -> one JSON line per event
//                  or error, until stdin closes; then {"done": true}
'use strict'

const fs = require('node:fs')
const path = require('node:path')
const { CID } = require('multiformats/cid')
const { sha256 } = require('multiformats/hashes/sha2')
const ui8 = require('uint8arrays')
const common = require('@atproto/common')
const crypto = require('@atproto/crypto')
const { IdResolver } = require('@atproto/identity')
const { BlobRef, jsonToLex, lexToJson } = require('@atproto/lexicon')
const repo = require('@atproto/repo')
const { Firehose, MemoryRunner } = require('@atproto/sync')

const LIBRARIES = {}
for (const name of ['@atproto/repo', '@atproto/sync', '@atproto/identity', '@atproto/crypto', '@atproto/common']) {
  LIBRARIES[name] = require(`${name}/package.json`).version
}

const readStdin = async () => {
  const chunks = []
  for await (const c of process.stdin) chunks.push(c)
  const text = Buffer.concat(chunks).toString('utf8')
  return text.trim() === '' ? {} : JSON.parse(text)
}

// print writes one JSON line; the promise resolves once it is flushed (a
// pipe is written asynchronously, and process.exit would cut it short).
const print = (v) => new Promise((resolve) => process.stdout.write(JSON.stringify(v) + '\n', resolve))

// The multibase form of a K-256 private key that atcrypto.ParsePrivateMultibase
// reads: 'z' + base58btc(varint(0x1301) ++ 32 key bytes).
const privateMultibase = (bytes) => 'z' + ui8.toString(ui8.concat([new Uint8Array([0x81, 0x26]), bytes]), 'base58btc')

async function keys({ count = 1 }) {
  const out = []
  for (let i = 0; i < count; i++) {
    const kp = await crypto.Secp256k1Keypair.create({ exportable: true })
    const priv = await kp.export()
    out.push({ privateKey: ui8.toString(priv, 'hex'), multibase: privateMultibase(priv), didKey: kp.did() })
  }
  return { libraries: LIBRARIES, keys: out }
}

// ---- build: repositories made by the reference ----

const rawCid = async (bytes) => CID.createV1(0x55, await sha256.digest(bytes))

const bytesOf = (n, seed) => {
  const b = new Uint8Array(n)
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7) & 0xff
  return b
}

// Every kind of value of the data model: strings (empty, unicode, NUL), integers
// at each CBOR width edge and the safe-integer limits, booleans, null, bytes,
// cid-links (dag-cbor and raw), nested and empty arrays and maps, keys that
// sort length-first, a blob (and the legacy blob form, a plain map).
const dataModelRecord = (i, blob, link, rawLink) => ({
  $type: 'com.example.interop.datamodel',
  text: `record ${i}`,
  empty: '',
  unicode: 'héllo wörld — 日本語 — עברית — 👩‍👩‍👧‍👦 — é — ﷽ — \u0000 — \u2028',
  long: 'ö'.repeat(3000),
  ints: [0, 1, -1, 23, 24, -24, -25, 255, 256, 65535, 65536, 4294967295, 4294967296, -4294967296, -4294967297,
    Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER],
  yes: true,
  no: false,
  nothing: null,
  bytes: bytesOf(300, i),
  noBytes: new Uint8Array(0),
  link,
  rawLink,
  links: [link, rawLink],
  nested: { a: [[], [[]], [{}], { deep: { deeper: { deepest: [1, [2, [3, [4, { five: 'v' }]]]] } } }], b: {} },
  emptyArray: [],
  emptyMap: {},
  a: 1,
  bb: 2,
  aa: 3,
  b: 4,
  z: 5,
  ключ: 'unicode key',
  '🔑': 'emoji key',
  blob,
  legacyBlob: { cid: rawLink.toString(), mimeType: 'image/jpeg' },
  createdAt: '2024-01-02T03:04:05.678Z',
})

const post = (i) => ({
  $type: 'app.bsky.feed.post',
  text: `post ${i}: ${'lorem ipsum '.repeat(i % 7)}`,
  langs: ['en'],
  createdAt: new Date(Date.UTC(2024, 0, 1) + i * 60000).toISOString(),
})

// The repositories: empty; a few records; a few thousand in several
// collections with odd record keys; every data-model value with blobs.
// Each is made in several commits (creates, then updates and deletes), as a
// PDS would, and exported with getFullRepo.
const SHAPES = {
  empty: async () => ({ commits: [[]], blobs: [] }),
  small: async () => ({
    commits: [
      [0, 1, 2, 3, 4].map((i) => create('app.bsky.feed.post', `3k${i}aaaaaaaa2`, post(i))),
      [update('app.bsky.feed.post', '3k1aaaaaaaa2', post(100)), del('app.bsky.feed.post', '3k3aaaaaaaa2'),
        create('app.bsky.actor.profile', 'self', { $type: 'app.bsky.actor.profile', displayName: 'Small' })],
    ],
    blobs: [],
  }),
  large: async () => {
    let tid = common.TID.fromTime(Date.UTC(2024, 0, 1) * 1000, 7)
    const first = []
    const keys = []
    const collections = ['app.bsky.feed.post', 'app.bsky.feed.like', 'app.bsky.graph.follow', 'com.example.interop.thing']
    for (let i = 0; i < 3000; i++) {
      tid = common.TID.next(tid)
      const coll = collections[i % collections.length]
      keys.push([coll, tid.toString()])
      first.push(create(coll, tid.toString(), coll === 'app.bsky.feed.post' ? post(i) : { $type: coll, n: i, createdAt: post(i).createdAt }))
    }
    // Record keys of every allowed character class and the longest allowed.
    const odd = ['a', 'self', 'x:y', 'a~b', '-_.', 'Z'.repeat(512), '...', '0']
    for (const rkey of odd) first.push(create('com.example.interop.thing', rkey, { $type: 'com.example.interop.thing', rkey }))
    const second = []
    for (let i = 0; i < 60; i++) second.push(update(keys[i * 37][0], keys[i * 37][1], { $type: keys[i * 37][0], updated: i }))
    for (let i = 0; i < 60; i++) second.push(del(keys[i * 41 + 5][0], keys[i * 41 + 5][1]))
    return { commits: [first.slice(0, 1500), first.slice(1500), second.filter(uniquePaths())], blobs: [] }
  },
  datamodel: async () => {
    const blobs = []
    for (const [i, mime] of [[0, 'image/png'], [1, 'image/jpeg'], [2, 'application/octet-stream']]) {
      const data = bytesOf(1000 + i * 4096, i + 11)
      blobs.push({ data, mimeType: mime, cid: await rawCid(data) })
    }
    const linked = await common.cidForCbor({ hello: 'world' })
    const records = []
    for (let i = 0; i < 5; i++) {
      const b = blobs[i % blobs.length]
      records.push(create('com.example.interop.datamodel', `dm${i}`, dataModelRecord(i, new BlobRef(b.cid, b.mimeType, b.data.length), linked, blobs[(i + 1) % blobs.length].cid)))
    }
    records.push(create('app.bsky.actor.profile', 'self', {
      $type: 'app.bsky.actor.profile', displayName: 'Dätä Mödel 🧪', avatar: new BlobRef(blobs[0].cid, blobs[0].mimeType, blobs[0].data.length),
    }))
    return {
      commits: [records, [update('com.example.interop.datamodel', 'dm4', dataModelRecord(40, new BlobRef(blobs[1].cid, blobs[1].mimeType, blobs[1].data.length), linked, blobs[2].cid))]],
      blobs,
    }
  },
}

const create = (collection, rkey, record) => ({ action: repo.WriteOpAction.Create, collection, rkey, record })
const update = (collection, rkey, record) => ({ action: repo.WriteOpAction.Update, collection, rkey, record })
const del = (collection, rkey) => ({ action: repo.WriteOpAction.Delete, collection, rkey })
const uniquePaths = () => {
  const seen = new Set()
  return (w) => {
    const k = `${w.collection}/${w.rkey}`
    if (seen.has(k)) return false
    seen.add(k)
    return true
  }
}

async function build({ outDir, repos: wanted }) {
  fs.mkdirSync(outDir, { recursive: true })
  const out = []
  for (const want of wanted) {
    const shape = SHAPES[want.name]
    if (!shape) throw new Error(`unknown repository shape ${want.name}`)
    const { commits, blobs } = await shape()
    const keypair = await crypto.Secp256k1Keypair.import(want.privateKey)
    const storage = new repo.MemoryBlockstore()
    let r = await repo.Repo.create(storage, want.did, keypair, commits[0])
    for (const writes of commits.slice(1)) r = await r.applyWrites(writes, keypair)
    const car = await common.streamToBuffer(repo.getFullRepo(storage, r.cid))
    const file = path.join(outDir, `${want.name}.car`)
    fs.writeFileSync(file, car)
    const records = []
    for (const leaf of await r.data.leaves()) {
      const { collection, rkey } = repo.parseDataKey(leaf.key)
      records.push({ collection, rkey, cid: leaf.value.toString() })
    }
    // A record's JSON as the reference writes it (com.atproto.repo.getRecord's value).
    const json = {}
    for (const rec of records.slice(0, 20)) {
      json[`${rec.collection}/${rec.rkey}`] = lexToJson(await r.getRecord(rec.collection, rec.rkey))
    }
    const blobFiles = blobs.map((b, i) => {
      const f = path.join(outDir, `${want.name}-blob${i}`)
      fs.writeFileSync(f, b.data)
      return { cid: b.cid.toString(), mimeType: b.mimeType, size: b.data.length, file: f }
    })
    // Keys that are not in the repository, for proofs of non-existence:
    // before the first key, between two keys, after the last.
    const absent = [
      { collection: 'aaa.before.all', rkey: 'x' },
      { collection: 'app.bsky.feed.post', rkey: '3k0aaaaaaaa3' },
      { collection: 'zzz.after.all', rkey: 'x' },
    ].filter((a) => !records.some((rec) => rec.collection === a.collection && rec.rkey === a.rkey))
    out.push({
      name: want.name, did: want.did, file, root: r.cid.toString(), data: r.commit.data.toString(), rev: r.commit.rev,
      records, json, blobs: blobFiles, absent,
    })
  }
  return { libraries: LIBRARIES, repos: out }
}

// ---- verify-proofs: sync.getRecord CARs ----

async function verifyProofsMode({ plcUrl, did, proofs }) {
  const resolver = new IdResolver({ plcUrl, timeout: 10000 })
  const key = await resolver.did.resolveAtprotoKey(did, true)
  const results = []
  for (const p of proofs) {
    const claim = { collection: p.collection, rkey: p.rkey, cid: p.cid ? CID.parse(p.cid) : null }
    try {
      const car = Buffer.from(p.car, 'base64')
      const res = await repo.verifyProofs(car, [claim], did, key)
      results.push({ verified: res.verified.length === 1 && res.unverified.length === 0, error: '' })
    } catch (err) {
      results.push({ verified: false, error: String(err && err.stack ? err.stack : err) })
    }
  }
  return { key, results }
}

// ---- check-repo: a repository exported by reservoir ----

const canonicalJSON = (v) => {
  if (Array.isArray(v)) return v.map(canonicalJSON)
  if (v && typeof v === 'object') {
    const out = {}
    for (const k of Object.keys(v).sort()) out[k] = canonicalJSON(v[k])
    return out
  }
  return v
}

async function checkRepo({ plcUrl, did, car: carFile, records: written }) {
  const problems = []
  const resolver = new IdResolver({ plcUrl, timeout: 10000 })
  const doc = await resolver.did.resolve(did, true)
  const key = await resolver.did.resolveAtprotoKey(did, true)
  const carBytes = fs.readFileSync(carFile)
  // readCarWithRoot checks every block's hash against its CID.
  const car = await repo.readCarWithRoot(carBytes)
  // verifyRepo: the commit's DID and signature (the key of the DID document),
  // every MST node reachable and well formed, every record block present.
  const verified = await repo.verifyRepo(car.blocks, car.root, did, key)
  const storage = new repo.MemoryBlockstore(car.blocks)
  const commit = await storage.readObj(car.root, repo.def.commit)
  const tree = repo.MST.load(storage, commit.data)
  if (commit.version !== 3) problems.push(`commit version ${commit.version}, want 3`)
  if (commit.prev !== null) problems.push(`commit prev ${commit.prev}, want null`)
  // Every record written is there, with the CID the reference computes
  // from the JSON that was sent, and reads back as the same JSON.
  const byPath = new Map(verified.creates.map((c) => [`${c.collection}/${c.rkey}`, c]))
  for (const w of written) {
    const p = `${w.collection}/${w.rkey}`
    const got = byPath.get(p)
    if (!got) {
      problems.push(`record ${p} written but not in the repository`)
      continue
    }
    byPath.delete(p)
    const want = await repo.cidForRecord(jsonToLex(w.record))
    if (!want.equals(got.cid)) problems.push(`record ${p}: CID ${got.cid} in the repository, the reference computes ${want} from the JSON written`)
    const back = JSON.stringify(canonicalJSON(lexToJson(repo.cborToLexRecord(car.blocks.get(got.cid)))))
    const sent = JSON.stringify(canonicalJSON(w.record))
    if (back !== sent) problems.push(`record ${p}: reads back as ${back.slice(0, 400)}, written as ${sent.slice(0, 400)}`)
  }
  for (const p of byPath.keys()) problems.push(`record ${p} in the repository was not written (or was deleted)`)
  // The same records rebuilt into an MST by the reference give the same root.
  let rebuilt = await repo.MST.create(new repo.MemoryBlockstore())
  for (const c of verified.creates) rebuilt = await rebuilt.add(`${c.collection}/${c.rkey}`, c.cid)
  const rebuiltRoot = await rebuilt.getPointer()
  if (!rebuiltRoot.equals(commit.data)) problems.push(`MST root ${commit.data}, the reference rebuilds ${rebuiltRoot} from the same records`)
  // Exactly the blocks of the repository: the commit, every node, every record.
  const reachable = new Set([car.root.toString()])
  for await (const b of tree.carBlockStream()) reachable.add(b.cid.toString())
  const inCar = new Set(car.blocks.cids().map((c) => c.toString()))
  for (const c of reachable) if (!inCar.has(c)) problems.push(`block ${c} of the repository is missing from the CAR`)
  for (const c of inCar) if (!reachable.has(c)) problems.push(`block ${c} in the CAR is not part of the repository`)
  return {
    libraries: LIBRARIES, problems, key, pds: doc && doc.service, root: car.root.toString(), data: commit.data.toString(),
    rebuilt: rebuiltRoot.toString(), rev: commit.rev, records: verified.creates.length, blocks: inCar.size,
  }
}

// ---- firehose: reservoir's subscribeRepos through @atproto/sync ----

async function firehose({ service, plcUrl, cursor }) {
  const idResolver = new IdResolver({ plcUrl, timeout: 10000 })
  const describeErr = (err) => {
    const evt = err.event || err.value || {}
    return {
      error: err.constructor ? err.constructor.name : 'Error', message: String(err.message),
      cause: err.cause ? String(err.cause.stack || err.cause) : '', seq: evt.seq, did: evt.did || evt.repo,
      type: evt.$type || evt.event,
    }
  }
  const opts = {
    service,
    idResolver,
    // Handles are not checked: that resolves them through DNS and HTTPS,
    // off this machine. DIDs and keys are resolved through the directory.
    unauthenticatedHandles: true,
    unauthenticatedCommits: false,
    subscriptionReconnectDelay: 200,
    handleEvent: async (evt) => {
      const out = { event: evt.event, seq: evt.seq, did: evt.did, time: evt.time }
      switch (evt.event) {
        case 'create':
        case 'update':
        case 'delete':
          Object.assign(out, { collection: evt.collection, rkey: evt.rkey, rev: evt.rev, commit: evt.commit.toString() })
          if (evt.cid) out.cid = evt.cid.toString()
          break
        case 'sync':
          Object.assign(out, { rev: evt.rev, cid: evt.cid.toString() })
          break
        case 'identity':
          out.hasDidDocument = !!evt.didDocument
          break
        case 'account':
          Object.assign(out, { active: evt.active, status: evt.status })
          break
      }
      print(out)
    },
    onError: (err) => print(describeErr(err)),
  }
  // The `getCursor` option of @atproto/sync 0.1.40 is broken (it sends the
  // function itself); a runner carries a start cursor instead.
  if (cursor !== undefined && cursor !== null) opts.runner = new MemoryRunner({ startCursor: cursor })
  const fh = new Firehose(opts)
  fh.start()
  print({ started: true })
  process.stdin.resume()
  await new Promise((resolve) => process.stdin.on('end', resolve))
  if (opts.runner) await opts.runner.processAll()
  await fh.destroy()
  await print({ done: true })
}

async function main() {
  const mode = process.argv[2]
  const input = await (mode === 'firehose' ? readFirstLine() : readStdin())
  switch (mode) {
    case 'keys':
      return await print(await keys(input))
    case 'build':
      return await print(await build(input))
    case 'verify-proofs':
      return await print(await verifyProofsMode(input))
    case 'check-repo':
      return await print(await checkRepo(input))
    case 'firehose':
      return firehose(input)
    default:
      throw new Error(`unknown mode ${mode}`)
  }
}

// readFirstLine reads the firehose mode's input: one line of JSON (stdin
// stays open after it; its end stops the consumer).
const readFirstLine = () =>
  new Promise((resolve, reject) => {
    let buf = ''
    const onData = (chunk) => {
      buf += chunk.toString('utf8')
      const i = buf.indexOf('\n')
      if (i >= 0) {
        process.stdin.off('data', onData)
        process.stdin.pause()
        try {
          resolve(JSON.parse(buf.slice(0, i)))
        } catch (err) {
          reject(err)
        }
      }
    }
    process.stdin.on('data', onData)
  })

main().then(
  () => process.exit(0),
  (err) => process.stderr.write(String(err && err.stack ? err.stack : err) + '\n', () => process.exit(1)),
)
