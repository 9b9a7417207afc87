// The one mark of a stack in the cluster: a stack has no object of its own (as in Swarm), only
// this label on each of its services, networks, secrets and configs.

/** docker's label, so that scripts written for `docker stack` find a stack's objects. */
export const NAMESPACE_LABEL = 'com.docker.stack.namespace';
