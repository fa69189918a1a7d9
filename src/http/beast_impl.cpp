// The one translation unit that compiles Boost.Beast (separate compilation).
#include <boost/beast/src.hpp>
