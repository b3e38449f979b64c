/* Umbrella header for the sluice data-plane ABI (C11, C++20, BPF C). */
#ifndef SLUICE_ABI_H
#define SLUICE_ABI_H

#include "types.h"
#include "wire.h"
#include "flow.h"
#include "drop_reason.h"
#include "tables.h"

#endif /* SLUICE_ABI_H */
