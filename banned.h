/*
 * banned.h - functions this project never calls, forced into every
 * translation unit with -include (after git's banned.h).
 *
 * The system headers that declare them are included first, so that the
 * declarations parse; every later call site fails to compile with a name
 * that says why.
 */
#ifndef TC_BANNED_H
#define TC_BANNED_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TC_BANNED(func) sorry_##func##_is_banned_in_tracecode

#undef strcpy
#define strcpy(x, y) TC_BANNED(strcpy)
#undef strcat
#define strcat(x, y) TC_BANNED(strcat)
#undef strncpy
#define strncpy(x, y, n) TC_BANNED(strncpy)
#undef strncat
#define strncat(x, y, n) TC_BANNED(strncat)
#undef strtok
#define strtok(x, y) TC_BANNED(strtok)
#undef sprintf
#define sprintf(...) TC_BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) TC_BANNED(vsprintf)
#undef gets
#define gets(x) TC_BANNED(gets)
#undef atoi
#define atoi(x) TC_BANNED(atoi)
#undef atol
#define atol(x) TC_BANNED(atol)
#undef atoll
#define atoll(x) TC_BANNED(atoll)
#undef gmtime
#define gmtime(t) TC_BANNED(gmtime)
#undef localtime
#define localtime(t) TC_BANNED(localtime)
#undef ctime
#define ctime(t) TC_BANNED(ctime)
#undef asctime
#define asctime(t) TC_BANNED(asctime)

#endif
