// The config readers use the IR's JSON field (ir/json_field.h): a JSON value with its key path in the
// file, so that every complaint reads "FILE: defaults.activation.bits: expected an integer, got ...".
#pragma once

#include "ir/json_field.h"

namespace qv::config::detail {

using json = qv::json;  // ordered: rules apply in the order written
using Node = qv::Field;

}  // namespace qv::config::detail
