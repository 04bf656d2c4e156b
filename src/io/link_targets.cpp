// The files HDF5 opens on its own: an external link's target and a virtual
// dataset's source. HDF5 opens each with open(2), which waits forever on a
// FIFO no process writes and may never end on a device; the reader checks
// such a file before HDF5 opens it.
#include "hdf5_detail.hpp"

#include <hdf5.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace basinvol {

bool has_hdf5_signature(const std::string& path) {
    static const char signature[8] = {'\211', 'H', 'D', 'F', '\r', '\n', '\032', '\n'};
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return false;
    struct stat st {};
    bool found = false;
    char head[8];
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
        for (off_t at = 0; !found && at + 8 <= st.st_size; at = at == 0 ? 512 : 2 * at)
            found = ::pread(fd, head, 8, at) == 8 && std::memcmp(head, signature, 8) == 0;
    ::close(fd);
    return found;
}

namespace detail {

TargetFile target_file(const std::string& name, const std::string& file, const char* prefix_variable) {
    TargetFile fallback;
    if (name.empty()) return fallback;
    std::vector<std::string> candidates;
    if (name[0] == '/') candidates.push_back(name);
    const std::string base = name[0] == '/' ? name.substr(name.rfind('/') + 1) : name;
    const auto folder_of = [](const std::string& path) {
        const std::size_t slash = path.rfind('/');
        return slash == std::string::npos ? std::string(".") : slash == 0 ? std::string("/") : path.substr(0, slash);
    };
    const auto under = [&](const std::string& dir) { return dir == "." ? base : dir + "/" + base; };
    const std::string origin = folder_of(file);
    const char* env = std::getenv(prefix_variable);
    // Each folder the variable lists, as written (HDF5 expands no ${ORIGIN} here).
    if (env && *env) {
        std::stringstream list(env);
        for (std::string dir; std::getline(list, dir, ':');)
            if (!dir.empty()) candidates.push_back(dir + "/" + base);
    }
    // A virtual dataset's own prefix: the whole of $HDF5_VDS_PREFIX, a
    // leading ${ORIGIN} standing for the file's folder (H5D__build_file_prefix).
    if (std::string(prefix_variable) == "HDF5_VDS_PREFIX" && env && *env && std::string(env) != ".") {
        const std::string prefix = env;
        candidates.push_back((prefix.rfind("${ORIGIN}", 0) == 0 ? origin + prefix.substr(9) : prefix) + "/" + base);
    }
    candidates.push_back(under(origin));
    candidates.push_back(base);
    // Beside the file a symbolic link names: HDF5's "actual name" of it.
    struct stat link {};
    if (::lstat(file.c_str(), &link) == 0 && S_ISLNK(link.st_mode))
        if (char* actual = ::realpath(file.c_str(), nullptr)) {
            candidates.push_back(under(folder_of(actual)));
            std::free(actual);
        }
    for (const auto& path : candidates) {
        struct stat st {};
        if (::stat(path.c_str(), &st) != 0 || S_ISDIR(st.st_mode)) continue;  // HDF5 fails on it and goes on
        if (!S_ISREG(st.st_mode)) {
            // One that cannot be opened (a socket; no permission) fails HDF5's open at once.
            const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
            if (fd < 0) continue;
            ::close(fd);
            return {path, TargetFile::blocking};
        }
        if (has_hdf5_signature(path)) return {path, TargetFile::hdf5};
        // Not an HDF5 file: HDF5 fails to open it and tries the next.
        if (fallback.kind == TargetFile::none) fallback = {path, TargetFile::other};
    }
    return fallback;
}

std::string blocked_link(hid_t group, const std::string& name) {
    H5L_info_t li{};
    if (H5Lget_info(group, name.c_str(), &li, H5P_DEFAULT) < 0 || li.type != H5L_TYPE_EXTERNAL) {
        H5Eclear2(H5E_DEFAULT);
        return "";
    }
    std::vector<char> val(li.u.val_size + 1, '\0');
    const char* file = nullptr;
    const char* object = nullptr;
    unsigned flags = 0;
    const ssize_t length = H5Fget_name(group, nullptr, 0);
    std::string parent(length > 0 ? static_cast<std::size_t>(length) + 1 : 1, '\0');
    if (H5Lget_val(group, name.c_str(), val.data(), li.u.val_size, H5P_DEFAULT) < 0 ||
        H5Lunpack_elink_val(val.data(), li.u.val_size, &flags, &file, &object) < 0 || !file || !object ||
        length <= 0 || H5Fget_name(group, parent.data(), parent.size()) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return "";
    }
    const TargetFile target = target_file(file, parent.c_str(), "HDF5_EXT_PREFIX");
    if (target.kind != TargetFile::blocking) return "";
    return "external link to " + std::string(file) + ":" + object + " leads to " + target.path +
           ", which is not a regular file (" + blocking_open + ")";
}

void guard_external_links() {
    static std::once_flag once;
    std::call_once(once, [] {
        // Every link traversal without its own link access list (all of
        // basinvol's) asks this first; a target that would block fails the
        // traversal, and broken_link names the file. A callback the host
        // program set there (basinvol in Python) is asked next, as before.
        static H5L_elink_traverse_t previous = nullptr;
        static void* previous_data = nullptr;
        if (H5Pget_elink_cb(H5P_LINK_ACCESS_DEFAULT, &previous, &previous_data) < 0) {
            previous = nullptr;
            H5Eclear2(H5E_DEFAULT);
        }
        const H5L_elink_traverse_t refuse_blocking = [](const char* parent_file, const char* parent_group,
                                                        const char* child_file, const char* child_object,
                                                        unsigned* flags, hid_t fapl, void*) -> herr_t {
            if (target_file(child_file, parent_file, "HDF5_EXT_PREFIX").kind == TargetFile::blocking) return -1;
            return previous ? previous(parent_file, parent_group, child_file, child_object, flags, fapl, previous_data)
                            : 0;
        };
        H5Pset_elink_cb(H5P_LINK_ACCESS_DEFAULT, refuse_blocking, nullptr);
    });
}

}  // namespace detail
}  // namespace basinvol
