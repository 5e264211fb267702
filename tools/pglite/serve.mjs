// PGlite (PostgreSQL 17 in WebAssembly) with TimescaleDB, served over the PostgreSQL
// wire protocol on a loopback port: the TimescaleDB path of PoTR's tests (storage.md,
// "Keeping the TimescaleDB path tested"). Not a production engine.
//
// Usage: node serve.mjs --host 127.0.0.1 --port 54329 [--data DIR | --data memory]
//        [--snapshot FILE] [--max-connections N]
// --snapshot (in memory only): start from FILE, a dump of a fresh database with the
// extension created (≈ 1 s instead of ≈ 3 s of initdb); made on the first start.
// Prints one line "pglite ready postgresql://HOST:PORT" on stdout once it accepts
// connections; exits on SIGTERM/SIGINT after closing the database.
//
// Its rules for clients: sslmode=disable; any user with some password; no COPY FROM
// STDIN; every connection shares ONE session; no background job scheduler.
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { PGlite } from "@electric-sql/pglite";
import { timescaledb } from "@electric-sql/pglite/timescaledb";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";

const { values: args } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string" },
    data: { type: "string", default: "memory" },
    snapshot: { type: "string" },
    "max-connections": { type: "string", default: "4" },
  },
});
if (!args.port) {
  console.error("serve.mjs: --port is required");
  process.exit(2);
}

const dataDir = args.data === "memory" ? "memory://" : args.data;
const snapshot = dataDir === "memory://" ? args.snapshot : undefined;
const db = (snapshot && (await fromSnapshot(snapshot))) || (await fresh(snapshot));

async function fresh(saveTo) {
  const made = await PGlite.create(dataDir, { extensions: { timescaledb } });
  // Created here so every client meets the same database a TimescaleDB server offers.
  await made.exec("CREATE EXTENSION IF NOT EXISTS timescaledb");
  if (saveTo) {
    try {
      const dump = await made.dumpDataDir("gzip");
      const partial = `${saveTo}.${process.pid}`;
      writeFileSync(partial, Buffer.from(await dump.arrayBuffer()));
      renameSync(partial, saveTo); // whole or not at all, if two start at once
    } catch (error) {
      console.error(`pglite: could not save snapshot ${saveTo}:`, error);
    }
  }
  return made;
}

async function fromSnapshot(path) {
  if (!existsSync(path)) return null;
  try {
    const loadDataDir = new Blob([readFileSync(path)]);
    const loaded = await PGlite.create(dataDir, { extensions: { timescaledb }, loadDataDir });
    // Before any other statement: loaded lazily later, TimescaleDB leaves its licensed
    // half (compression, policies, continuous aggregates) out.
    await loaded.exec("LOAD 'timescaledb'");
    return loaded;
  } catch (error) {
    console.error(`pglite: snapshot ${path} unusable, starting afresh:`, error);
    return null;
  }
}

const server = new PGLiteSocketServer({
  db,
  host: args.host,
  port: Number(args.port),
  maxConnections: Number(args["max-connections"]),
});
server.addEventListener("error", (event) => console.error("pglite: socket error", event.detail));
await server.start();
console.log(`pglite ready postgresql://${args.host}:${args.port}`);

let stopping = false;
async function shutdown(signal) {
  if (stopping) return;
  stopping = true;
  console.log(`pglite: ${signal}, stopping`);
  await server.stop();
  // In memory there is nothing to save, and closing costs a second or two.
  if (dataDir !== "memory://") await db.close();
  process.exit(0);
}
process.on("SIGTERM", () => shutdown("SIGTERM"));
process.on("SIGINT", () => shutdown("SIGINT"));
