#pragma once
// Numbers are read and written as text in the C locale whatever the
// process's: a program that embeds basinvol (a Python notebook after
// locale.setlocale(LC_ALL, "de_DE.UTF-8")) would otherwise have printf write
// 0,5 and strtod stop at the dot of 0.5. The guard switches the calling
// thread alone (uselocale), for the scope it lives in.
#include <clocale>
#include <locale.h>

namespace basinvol {

class CLocale {
public:
    CLocale() : old_(c() ? ::uselocale(c()) : nullptr) {}
    ~CLocale() {
        if (old_) ::uselocale(old_);
    }
    CLocale(const CLocale&) = delete;
    CLocale& operator=(const CLocale&) = delete;

private:
    static locale_t c() {
        static const locale_t l = ::newlocale(LC_ALL_MASK, "C", static_cast<locale_t>(nullptr));
        return l;
    }
    locale_t old_;
};

}  // namespace basinvol
