#include "artifact/fetch.hpp"
