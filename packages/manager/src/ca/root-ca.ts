// The root CA and certificate issuance live in @shoal/pki; the manager's CA component (ca-server.ts)
// serves them to joining and renewing nodes.
export { type RootCA, caFingerprint, createRootCA } from '@shoal/pki';
