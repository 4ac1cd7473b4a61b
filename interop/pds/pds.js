// Starts the reference PDS (@atproto/pds, pinned in package.json) the way
// its Docker entry does (readEnv -> envToCfg / envToSecrets -> PDS.create
// -> start), on 127.0.0.1 only, for interop/pds_test.go.
//
//   node pds.js  (env: PDS_PORT, PDS_DATA_DIRECTORY, PDS_DID_PLC_URL, PDS_ADMIN_PASSWORD)
//
// Fixed here: dev mode, hostname localhost, invites off, no appview, no
// crawlers (the test sends requestCrawl itself), sqlite and disk blobs in
// the data directory, fresh random secrets. Two changes to the Docker
// entry's behaviour: the server binds 127.0.0.1 (the PDS has no option for
// it; it listens on all interfaces otherwise), and its public URL, which
// goes into every account's DID document as the PDS endpoint, is
// http://127.0.0.1:PORT (with hostname localhost it would be
// http://localhost:PORT), so the endpoint names the host the relay crawls.
//
// Prints one JSON line {"port":N,"version":"..."} on stdout when it
// listens; stops on SIGTERM / SIGINT.
'use strict'
const crypto = require('node:crypto')
const path = require('node:path')
const { PDS, envToCfg, envToSecrets, readEnv } = require('@atproto/pds')
const pkg = require('@atproto/pds/package.json')
const { Secp256k1Keypair } = require('@atproto/crypto')

async function main() {
  const dataDir = process.env.PDS_DATA_DIRECTORY
  if (!dataDir) throw new Error('PDS_DATA_DIRECTORY is required')
  if (!process.env.PDS_PORT) throw new Error('PDS_PORT is required')
  if (!process.env.PDS_DID_PLC_URL) throw new Error('PDS_DID_PLC_URL is required')
  const rotation = await Secp256k1Keypair.create({ exportable: true })
  const defaults = {
    PDS_DEV_MODE: 'true',
    PDS_HOSTNAME: 'localhost',
    PDS_INVITE_REQUIRED: 'false',
    PDS_BLOBSTORE_DISK_LOCATION: path.join(dataDir, 'blocks'),
    PDS_JWT_SECRET: crypto.randomBytes(16).toString('hex'),
    PDS_ADMIN_PASSWORD: 'interop-admin',
    PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX: Buffer.from(await rotation.export()).toString('hex'),
    LOG_ENABLED: 'false',
  }
  for (const [k, v] of Object.entries(defaults)) {
    if (process.env[k] === undefined) process.env[k] = v
  }
  const env = readEnv()
  const cfg = envToCfg(env)
  cfg.service.publicUrl = `http://127.0.0.1:${cfg.service.port}`
  const secrets = envToSecrets(env)
  const pds = await PDS.create(cfg, secrets)
  const listen = pds.app.listen.bind(pds.app)
  pds.app.listen = (port) => listen(port, '127.0.0.1')
  const server = await pds.start()
  process.stdout.write(JSON.stringify({ port: server.address().port, version: pkg.version }) + '\n')
  const stop = async () => {
    await pds.destroy().catch(() => {})
    process.exit(0)
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}

main().catch((err) => {
  console.error('pds.js:', err && err.stack ? err.stack : err)
  process.exit(1)
})
