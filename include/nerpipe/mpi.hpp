// SPDX-License-Identifier: Apache-2.0
//! @file `nerpipe::mpi<Inner>` (executor/mpi.hpp): one executor per MPI rank over a shard of the input. Optional:
//! needs an MPI implementation (<mpi.h>, link MPI::MPI_CXX or the nerpipe::mpi target).
#pragma once

#include <nerpipe/executor/mpi.hpp>
