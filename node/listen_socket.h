/* Opens the data plane's listening sockets: one SO_REUSEPORT socket per worker slot, with
 * IP_FREEBIND (a standby can bind the virtual IP before holding it), IPV6_V6ONLY for "[::]",
 * and for UDP the packet-info options that let replies leave from the address a client wrote to. */
#ifndef VORO_NODE_LISTEN_SOCKET_H
#define VORO_NODE_LISTEN_SOCKET_H

#include "cluster/config.h"

/* Returns a listening (TCP, backlog 4096) or bound (UDP) non-blocking socket, or a negative
 * errno. The caller owns the fd. */
int voro_listen_socket_open(const struct voro_sockaddr *addr, enum voro_listener_mode mode);

#endif
