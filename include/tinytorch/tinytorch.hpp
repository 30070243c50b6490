// The umbrella header: everything a user of tinytorch needs.
#pragma once

#include "tinytorch/autograd.hpp"
#include "tinytorch/backends.hpp"
#include "tinytorch/data.hpp"
#include "tinytorch/errors.hpp"
#include "tinytorch/functional.hpp"
#include "tinytorch/layers.hpp"
#include "tinytorch/models.hpp"
#include "tinytorch/module.hpp"
#include "tinytorch/optim.hpp"
#include "tinytorch/perf.hpp"
#include "tinytorch/random.hpp"
#include "tinytorch/runtime.hpp"
#include "tinytorch/serialize.hpp"
#include "tinytorch/spatial.hpp"
#include "tinytorch/tensor.hpp"
#include "tinytorch/version.hpp"
