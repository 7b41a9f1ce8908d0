/* SPDX-License-Identifier: MIT */
/*
 * Page geometry shared by every layer: the wire, the codecs and engines
 * (which size their jobs and buffers by a packet), zero detection and the
 * page hash.
 */
#ifndef LM_PAGE_H
#define LM_PAGE_H

#define LM_PAGE_SHIFT 12
#define LM_PAGE_SIZE (1u << LM_PAGE_SHIFT)
/* Pages one multifd packet carries at most: the unit of every codec and
 * engine job, and of a sender's share of a pass. */
#define LM_PACKET_PAGES 128u

#endif
