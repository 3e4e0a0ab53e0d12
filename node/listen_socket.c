/* SO_REUSEPORT listening sockets for TCP and UDP listeners. */
#include "node/listen_socket.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

static int set_int_opt(int fd, int level, int name, int value)
{
    return setsockopt(fd, level, name, &value, sizeof(value)) == 0 ? 0 : -errno;
}

int voro_listen_socket_open(const struct voro_sockaddr *addr, enum voro_listener_mode mode)
{
    int family = addr->ss.ss_family;
    int type = (mode == VORO_MODE_UDP ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC;
    int fd = socket(family, type, 0);
    if (fd < 0)
        return -errno;
    int rc;
    if ((rc = set_int_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1)) || (rc = set_int_opt(fd, SOL_SOCKET, SO_REUSEPORT, 1)))
        goto fail;
    if (family == AF_INET6) {
        if ((rc = set_int_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1)) ||
            (rc = set_int_opt(fd, IPPROTO_IPV6, IPV6_FREEBIND, 1)))
            goto fail;
        if (mode == VORO_MODE_UDP && (rc = set_int_opt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)))
            goto fail;
    } else {
        if ((rc = set_int_opt(fd, IPPROTO_IP, IP_FREEBIND, 1)))
            goto fail;
        if (mode == VORO_MODE_UDP && (rc = set_int_opt(fd, IPPROTO_IP, IP_PKTINFO, 1)))
            goto fail;
    }
    if (mode != VORO_MODE_UDP)
        (void)set_int_opt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
    if (bind(fd, (const struct sockaddr *)&addr->ss, addr->len) != 0) {
        rc = -errno;
        goto fail;
    }
    if (mode != VORO_MODE_UDP && listen(fd, 4096) != 0) {
        rc = -errno;
        goto fail;
    }
    return fd;
fail:
    close(fd);
    return rc;
}
