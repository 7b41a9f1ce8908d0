/* SPDX-License-Identifier: MIT */
/* What both userfaultfd trackers ask the kernel first. */
#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dirty/uffd_compat.h"

int lm_uffd_open(bool user_mode_only)
{
	int fd = -1;
	/* Prefer a uffd that also sees kernel-mode faults (a read(2) into
	 * tracked memory); unprivileged processes only get user-mode ones. */
	if (!user_mode_only)
		fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 && (user_mode_only || errno == EPERM))
		fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	return fd < 0 ? -errno : fd;
}

int lm_uffd_features(bool user_mode_only, uint64_t *features, const char **why)
{
	/* A throw-away uffd: UFFDIO_API may be called once per descriptor,
	 * and it reports every feature the kernel offers. */
	struct uffdio_api api = {.api = UFFD_API};
	int fd = lm_uffd_open(user_mode_only), err = 0;

	if (fd >= 0) {
		if (ioctl(fd, UFFDIO_API, &api) < 0)
			err = -errno;
		close(fd);
	} else {
		err = fd;
	}
	*features = api.features;
	if (err == -ENOSYS)
		*why = "userfaultfd not built into this kernel";
	else if (err == -EPERM)
		*why = "userfaultfd not permitted (vm.unprivileged_userfaultfd)";
	else if (err)
		*why = "userfaultfd UFFDIO_API failed";
	return err;
}

int lm_uffd_probe(bool user_mode_only, uint64_t need, const char *missing, const char **why)
{
	uint64_t f = 0;
	const char *w = NULL;
	int err = lm_uffd_features(user_mode_only, &f, &w);
	if (!err && (f & need) != need) {
		err = -EOPNOTSUPP;
		w = missing;
	}
	if (why)
		*why = w;
	return err;
}
