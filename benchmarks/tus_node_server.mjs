// Serve @tus/server with @tus/file-store on 127.0.0.1 until SIGTERM: the peer
// of the filter's tus workloads.  Defaults throughout (file store: no fsync).
//
//     node benchmarks/tus_node_server.mjs PORT DIRECTORY
import http from "node:http";
import { Server } from "@tus/server";
import { FileStore } from "@tus/file-store";

const [port, directory] = process.argv.slice(2);
const tus = new Server({ path: "/files", datastore: new FileStore({ directory }) });
const server = http.createServer((req, res) => tus.handle(req, res));
server.listen(Number(port), "127.0.0.1");
process.on("SIGTERM", () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
