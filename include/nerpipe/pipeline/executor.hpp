// SPDX-License-Identifier: Apache-2.0
//! @file Executors: run annotators over a stream of documents, in input order, with bad records isolated.
//! One file per job under executor/: batch planning, memory, fault isolation, `sequential`, `round_robin`
//! (and `mpi` in <nerpipe/mpi.hpp>). This header includes them all.
#pragma once

#include <nerpipe/executor/isolation.hpp>
#include <nerpipe/executor/memory.hpp>
#include <nerpipe/executor/planning.hpp>
#include <nerpipe/executor/round_robin.hpp>
#include <nerpipe/executor/sequential.hpp>
