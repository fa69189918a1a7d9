#include "model/analysis.hpp"
