/* homa_echo_client: a Homa echo client written for Linux Homa's API only.
 *
 * Usage: homa_echo_client ADDRESS PORT [COUNT] [SIZE]
 *
 * Sends COUNT requests of SIZE bytes (default 10 x 100) to an echo server
 * (examples/echo_server) and checks every response. Even-numbered requests
 * are shared (received with id 0, after poll() reports the socket readable),
 * odd-numbered ones private (received by id); each request is gathered from
 * two iovecs and carries a completion cookie; the response's bpages are given
 * back in the next recvmsg. Prints one line and exits 0 on success.
 *
 * It includes no uhoma header: the few definitions it needs from Linux's
 * <linux/homa.h> are copied below, as any Linux Homa program has them. It
 * runs on the Linux Homa module, or on uhoma through the LD_PRELOAD shim:
 *
 *   LD_PRELOAD=build/src/api/libuhoma_preload.so \
 *       build/examples/homa_echo_client 127.0.0.1 4000
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/types.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* ---- From Linux's <linux/homa.h> ------------------------------------- */
#ifndef IPPROTO_HOMA
#define IPPROTO_HOMA 146
#endif
#define HOMA_MAX_MESSAGE_LENGTH 1000000
#define HOMA_BPAGE_SHIFT 16
#define HOMA_BPAGE_SIZE (1 << HOMA_BPAGE_SHIFT)
#define HOMA_MAX_BPAGES 16
#define HOMA_SENDMSG_PRIVATE 0x01
#define SO_HOMA_RCVBUF 10

struct homa_sendmsg_args {
	__u64 id;
	__u64 completion_cookie;
	__u32 flags;
	__u32 reserved;
};

struct homa_recvmsg_args {
	__u64 id;
	__u64 completion_cookie;
	__u32 num_bpages;
	__u32 reserved;
	__u32 bpage_offsets[HOMA_MAX_BPAGES];
};

struct homa_rcvbuf_args {
	__u64 start;
	__u64 length;
};
/* ---------------------------------------------------------------------- */

union address {
	struct sockaddr sa;
	struct sockaddr_in in4;
	struct sockaddr_in6 in6;
};

static unsigned char request[HOMA_MAX_MESSAGE_LENGTH];

static unsigned char pattern_byte(long rpc, size_t k)
{
	return (unsigned char)((k * 7 + (size_t)rpc * 13 + 1) & 0xff);
}

int main(int argc, char **argv)
{
	union address server;
	socklen_t server_len;
	int family;
	long count = 10, size = 100;
	size_t region_bytes = 64u << 20;
	char *region;
	struct homa_rcvbuf_args rcvbuf;
	struct homa_recvmsg_args recv_args;
	struct timespec start, end;
	long i;
	int fd;

	if (argc < 3) {
		fprintf(stderr, "usage: homa_echo_client ADDRESS PORT [COUNT] [SIZE]\n");
		return 2;
	}
	if (argc > 3)
		count = strtol(argv[3], NULL, 10);
	if (argc > 4)
		size = strtol(argv[4], NULL, 10);
	if (count <= 0 || size <= 0 || size > HOMA_MAX_MESSAGE_LENGTH) {
		fprintf(stderr, "homa_echo_client: COUNT > 0 and SIZE in 1..%d\n",
			HOMA_MAX_MESSAGE_LENGTH);
		return 2;
	}
	memset(&server, 0, sizeof(server));
	if (inet_pton(AF_INET, argv[1], &server.in4.sin_addr) == 1) {
		family = AF_INET;
		server.in4.sin_family = AF_INET;
		server.in4.sin_port = htons((uint16_t)strtol(argv[2], NULL, 10));
		server_len = sizeof(server.in4);
	} else if (inet_pton(AF_INET6, argv[1], &server.in6.sin6_addr) == 1) {
		family = AF_INET6;
		server.in6.sin6_family = AF_INET6;
		server.in6.sin6_port = htons((uint16_t)strtol(argv[2], NULL, 10));
		server_len = sizeof(server.in6);
	} else {
		fprintf(stderr, "homa_echo_client: not a numeric address: %s\n", argv[1]);
		return 2;
	}

	fd = socket(family, SOCK_DGRAM, IPPROTO_HOMA);
	if (fd < 0) {
		fprintf(stderr, "homa_echo_client: cannot open a Homa socket: %s\n",
			strerror(errno));
		return 1;
	}
	region = mmap(NULL, region_bytes, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED) {
		fprintf(stderr, "homa_echo_client: mmap: %s\n", strerror(errno));
		return 1;
	}
	rcvbuf.start = (uintptr_t)region;
	rcvbuf.length = region_bytes;
	if (setsockopt(fd, IPPROTO_HOMA, SO_HOMA_RCVBUF, &rcvbuf, sizeof(rcvbuf)) != 0) {
		fprintf(stderr, "homa_echo_client: SO_HOMA_RCVBUF: %s\n", strerror(errno));
		return 1;
	}

	memset(&recv_args, 0, sizeof(recv_args));
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (i = 0; i < count; i++) {
		struct homa_sendmsg_args send_args;
		struct iovec iov[2];
		struct msghdr hdr;
		union address source;
		int private_rpc = (int)(i & 1);
		size_t half = (size_t)size / 2, k;
		ssize_t length;

		for (k = 0; k < (size_t)size; k++)
			request[k] = pattern_byte(i, k);

		memset(&send_args, 0, sizeof(send_args));
		send_args.completion_cookie = 1000 + (__u64)i;
		send_args.flags = private_rpc ? HOMA_SENDMSG_PRIVATE : 0;
		iov[0].iov_base = request;
		iov[0].iov_len = half;
		iov[1].iov_base = request + half;
		iov[1].iov_len = (size_t)size - half;
		memset(&hdr, 0, sizeof(hdr));
		hdr.msg_name = &server;
		hdr.msg_namelen = server_len;
		hdr.msg_iov = iov;
		hdr.msg_iovlen = 2;
		hdr.msg_control = &send_args;
		hdr.msg_controllen = 0;
		if (sendmsg(fd, &hdr, 0) != 0) {
			fprintf(stderr, "homa_echo_client: rpc %ld: sendmsg: %s\n", i,
				strerror(errno));
			return 1;
		}
		if (send_args.id == 0 || (send_args.id & 1) != 0) {
			fprintf(stderr, "homa_echo_client: rpc %ld: bad id %llu\n", i,
				(unsigned long long)send_args.id);
			return 1;
		}

		if (!private_rpc) {
			struct pollfd pfd = {.fd = fd, .events = POLLIN};

			if (poll(&pfd, 1, 10000) != 1 || !(pfd.revents & POLLIN)) {
				fprintf(stderr, "homa_echo_client: rpc %ld: poll did not report "
					"the response\n", i);
				return 1;
			}
		}
		/* recv_args still lists the previous response's bpages: this
		 * call gives them back. */
		recv_args.id = private_rpc ? send_args.id : 0;
		memset(&hdr, 0, sizeof(hdr));
		hdr.msg_name = &source;
		hdr.msg_namelen = sizeof(source);
		hdr.msg_control = &recv_args;
		hdr.msg_controllen = sizeof(recv_args);
		length = recvmsg(fd, &hdr, 0);
		if (length < 0) {
			fprintf(stderr, "homa_echo_client: rpc %ld: recvmsg: %s\n", i,
				strerror(errno));
			return 1;
		}
		if (recv_args.id != send_args.id ||
		    recv_args.completion_cookie != send_args.completion_cookie) {
			fprintf(stderr, "homa_echo_client: rpc %ld: got id %llu cookie %llu\n",
				i, (unsigned long long)recv_args.id,
				(unsigned long long)recv_args.completion_cookie);
			return 1;
		}
		if (length != size || hdr.msg_namelen != server_len ||
		    source.sa.sa_family != family) {
			fprintf(stderr, "homa_echo_client: rpc %ld: %zd bytes from family %d\n",
				i, length, source.sa.sa_family);
			return 1;
		}
		for (k = 0; k < (size_t)length; k++) {
			const char *p = region + recv_args.bpage_offsets[k >> HOMA_BPAGE_SHIFT] +
					(k & (HOMA_BPAGE_SIZE - 1));

			if ((unsigned char)*p != pattern_byte(i, k)) {
				fprintf(stderr, "homa_echo_client: rpc %ld: byte %zu differs\n",
					i, k);
				return 1;
			}
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &end);

	/* Give the last response's bpages back; nothing else is pending. */
	{
		struct msghdr hdr;

		recv_args.id = 0;
		memset(&hdr, 0, sizeof(hdr));
		hdr.msg_control = &recv_args;
		hdr.msg_controllen = sizeof(recv_args);
		if (recvmsg(fd, &hdr, MSG_DONTWAIT) >= 0 || errno != EAGAIN) {
			fprintf(stderr, "homa_echo_client: final recvmsg: %s\n",
				strerror(errno));
			return 1;
		}
	}
	if (close(fd) != 0) {
		fprintf(stderr, "homa_echo_client: close: %s\n", strerror(errno));
		return 1;
	}
	printf("homa_echo_client: %ld RPCs of %ld bytes OK, %.1f us per RPC\n", count, size,
	       ((double)(end.tv_sec - start.tv_sec) * 1e6 +
		(double)(end.tv_nsec - start.tv_nsec) / 1e3) / (double)count);
	munmap(region, region_bytes);
	return 0;
}
