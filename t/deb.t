#!/usr/bin/perl
# The Debian package (issue 15), as an operator meets it: lintian, then a
# clean Debian 12 root (debootstrap'd once, cached as a tarball) where
# apt-get installs stock nginx and the package from the mirror; that root's
# nginx, with a site that includes the snippet, converts a clip and serves
# the page; an upgrade keeps the store and a finished job; remove, install
# again and purge leave an nginx that starts.
#
# Runs as root (make test-deb; CI).  VCONV_DEB: the package (default: the
# newest in build/); VCONV_TEST_CACHE: where the root's tarball and the
# downloaded packages are kept (default /var/cache/vconv-test);
# VCONV_DEBIAN_MIRROR: the mirror (default: the host's apt sources).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Fcntl qw(:flock);
use File::Path qw(make_path remove_tree);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(_exit);
use Test::More;
use Time::HiRes qw(time sleep);
use VconvNginx;

my $SUITE = 'bookworm';
my $PKG   = 'libnginx-mod-http-vconv';
my $CACHE = $ENV{VCONV_TEST_CACHE} || '/var/cache/vconv-test';
my $IMAGE = "$CACHE/$SUITE-minbase.tar.zst";
my $DEBS  = "$CACHE/apt-archives";
my $JSON  = JSON::PP->new->utf8->canonical;

# ---------------------------------------------------------------- helpers

# runs a command; returns its exit status and its stdout+stderr.  Without
# make test's PERL5OPT/PERL5LIB: debootstrap's and dpkg's perl inside the
# new root would look for our test modules there.
sub run {
    my @cmd = @_;
    my $pid = open(my $fh, '-|') // die "fork: $!";
    if ($pid == 0) {
        delete @ENV{qw(PERL5OPT PERL5LIB)};
        open STDERR, '>&', \*STDOUT;
        exec { $cmd[0] } @cmd or _exit(127);
    }
    local $/;
    my $out = <$fh> // '';
    close $fh;
    return ($? >> 8, $out);
}

sub have { my ($rc) = run('sh', '-c', 'command -v "$1"', 'sh', $_[0]); !$rc }

my $root;          # the Debian root of this run
my @nginx_pids;    # its nginx masters, stopped at the end whatever happens

# runs a command inside the root, in a mount namespace of its own (so its
# /proc, /dev and the package cache vanish with it), as apt-get would run
# on a real machine
sub in_root {
    my @cmd = @_;
    my $setup = 'set -e; r=$1; c=$2; shift 2; '
        . 'mount -t proc proc "$r/proc"; '
        . 'mount --rbind /dev "$r/dev"; '
        . 'mount --bind "$c" "$r/var/cache/apt/archives"; '
        . 'exec chroot "$r" "$@"';
    return run('unshare', '--mount', '--propagation', 'private', 'sh', '-c',
               $setup, 'sh', $root, $DEBS, 'env', '-i',
               'PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root',
               'LC_ALL=C.UTF-8', 'DEBIAN_FRONTEND=noninteractive',
               map({ "$_=$ENV{$_}" } grep { $ENV{$_} }
                   qw(http_proxy https_proxy no_proxy)),
               @cmd);
}

sub apt_get {
    my @args = @_;
    my $t0 = time;
    my ($rc, $out) = in_root('apt-get', '-y', '-q', '--no-install-recommends',
                             '-o', 'Dpkg::Use-Pty=0', @args);
    return ($rc, $out, time - $t0);
}

sub slurp {
    my ($path) = @_;
    open my $fh, '<', $path or return undef;
    local $/;
    return scalar <$fh>;
}

sub spew {
    my ($path, $text) = @_;
    open my $fh, '>', $path or die "$path: $!";
    print $fh $text;
    close $fh or die "$path: $!";
}

# the mirror the host's apt uses for $SUITE (and its security suite)
sub host_mirrors {
    my ($main, $security);
    for my $f (glob('/etc/apt/sources.list /etc/apt/sources.list.d/*')) {
        my $text = slurp($f) // next;
        my @entries;
        if ($f =~ /\.sources$/) {
            for my $para (split /\n\s*\n/, $text) {
                my %h = map { /^(\w[\w-]*):\s*(.*)$/ ? (lc $1, $2) : () }
                        split /\n/, $para;
                next if ($h{types} // 'deb') !~ /\bdeb\b/ || !$h{uris};
                for my $s (split ' ', $h{suites} // '') {
                    push @entries, [$_, $s] for split ' ', $h{uris};
                }
            }
        } else {
            for (split /\n/, $text) {
                push @entries, [$1, $2]
                    if /^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/;
            }
        }
        for (@entries) {
            my ($uri, $suite) = @$_;
            $main //= $uri if $suite eq $SUITE;
            $security //= $uri if $suite eq "$SUITE-security";
        }
    }
    $main = $ENV{VCONV_DEBIAN_MIRROR} if $ENV{VCONV_DEBIAN_MIRROR};
    $main //= 'http://deb.debian.org/debian';
    s{/+$}{} for grep { defined } $main, $security;
    return ($main, $security);
}

# apt settings of the host that its mirror needs (proxy, the date checks)
sub host_apt_conf {
    my $conf = '';
    for my $f (glob('/etc/apt/apt.conf /etc/apt/apt.conf.d/*')) {
        my $text = slurp($f) // next;
        for (split /\n/, $text) {
            $conf .= "$_\n" if /^\s*Acquire::(?:[\w-]+::)*
                                  (?:Proxy|Check-Valid-Until|Check-Date)\b
                                  .*;\s*$/xi;
        }
    }
    return $conf;
}

sub nginx_listens {
    my ($port) = @_;
    return IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                 Proto => 'tcp', Timeout => 1);
}

# the root's nginx as its init script would start it (a daemon), its
# output kept out of our pipe
sub start_nginx {
    my ($port) = @_;
    my ($rc) = in_root('sh', '-c',
                       'exec /usr/sbin/nginx </dev/null >/tmp/nginx.out 2>&1');
    my $pid = (slurp("$root/run/nginx.pid") // '') =~ /(\d+)/ ? $1 : 0;
    push @nginx_pids, $pid if $pid;
    return 1 if !$rc && VconvNginx::poll(10, sub { nginx_listens($port) });
    diag("the root's nginx did not start:\n",
         slurp("$root/tmp/nginx.out") // '',
         `tail -5 '$root/var/log/nginx/error.log' 2>&1`);
    return 0;
}

sub stop_nginx {
    for my $pid (@nginx_pids) {
        kill 'QUIT', $pid or next;
        VconvNginx::poll(10, sub { !kill 0, $pid });
        kill 'KILL', $pid;
    }
    @nginx_pids = ();
}

# the root goes once its nginx is gone and nothing is mounted in it (all
# mounts were in namespaces of their own: this only makes sure)
my $run;
END {
    stop_nginx();
    if ($run && -d $run) {
        my $mounts = slurp('/proc/self/mounts') // '';
        if (index($mounts, " $run/") >= 0) {
            diag("something is still mounted under $run: left in place");
        } else {
            remove_tree($run);
        }
    }
}

# curl against the root's nginx; returns (status, body).  Options: out (a
# file for the body), args (more curl arguments).
sub http {
    my ($port, $path, %o) = @_;
    my $body = $o{out} // File::Temp->new;
    my ($rc, $code) = run('curl', '-s', '-o', "$body", '-w', '%{http_code}',
                          '--max-time', '60', @{ $o{args} // [] },
                          "http://127.0.0.1:$port$path");
    return ($rc ? 0 : $code + 0, $o{out} ? '' : slurp("$body") // '');
}

sub site {
    my ($port, $include) = @_;
    spew("$root/etc/nginx/sites-available/vconv-test",
         "server {\n    listen 127.0.0.1:$port;\n    server_name _;\n"
         . "    location = /health { return 204; }\n"
         . ($include ? "    include snippets/vconv.conf;\n" : '') . "}\n");
}

sub status_of {
    my ($rc, $out) = in_root('dpkg-query', '-W', '-f', '${Status} ${Version}',
                             $PKG);
    return $rc ? 'not installed' : $out;
}

sub stat_in_root {
    my ($path) = @_;
    my ($rc, $out) = in_root('stat', '-c', '%U:%G %a', $path);
    chomp $out;
    return $rc ? '' : $out;
}

# ---------------------------------------------------------------- preconditions

plan skip_all => 'needs root: debootstrap, chroot and mount namespaces'
    if $> != 0;

my $deb = $ENV{VCONV_DEB}
    || (sort { -M $a <=> -M $b }
        glob("$VconvNginx::ROOT/build/${PKG}_*.deb"))[0];
BAIL_OUT('no package: run make deb (make test-deb does)')
    unless $deb && -f $deb;

for my $tool (qw(debootstrap lintian unshare chroot curl ffmpeg ffprobe zstd
                 dpkg-deb)) {
    BAIL_OUT("$tool is missing: make deps installs it") unless have($tool);
}

{
    my ($rc, $out) = run('unshare', '--mount', '--propagation', 'private',
                         'true');
    plan skip_all => "this machine gives no mount namespace to root: $out"
        if $rc;
}

my ($mirror, $security) = host_mirrors();
{
    my ($rc, $out) = run('curl', '-fsS', '-o', '/dev/null', '--max-time',
                         '20', "$mirror/dists/$SUITE/Release");
    plan skip_all => "no network to the Debian mirror $mirror: $out" if $rc;
}

plan tests => 58;

my $tmp = tempdir('vconv-deb-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $size = -s $deb;
diag(sprintf 'package: %s, %.1f KiB, Installed-Size %s KiB',
     $deb =~ s{.*/}{}r, $size / 1024,
     `dpkg-deb -f '$deb' Installed-Size` =~ s/\s+//gr);

# ---------------------------------------------------------------- lintian

{
    my ($rc, $out) = run('lintian', '--pedantic', '--display-info',
                         '--fail-on', 'error', $deb);
    $out =~ s/^running with root privileges is not recommended!\n//m;
    is($rc, 0, 'lintian finds no error') or diag($out);
    diag(length $out ? "lintian:\n$out" : 'lintian: nothing to say');
    like(`dpkg-deb -f '$deb' Depends`,
         qr/\bnginx-abi-1\.22\.1-\d+\b.*libavcodec/,
         'Depends: the nginx ABI and the libav* libraries');
}

# ---------------------------------------------------------------- the root

make_path($CACHE, $DEBS);
open my $lock, '>>', "$CACHE/.lock" or die "$CACHE/.lock: $!";
if (!flock($lock, LOCK_EX | LOCK_NB)) {
    diag("waiting for another run's lock on $CACHE");
    flock($lock, LOCK_EX) or die "flock: $!";
}

if (!-s $IMAGE) {
    my $t0 = time;
    my $build = tempdir('root-XXXXXX', DIR => $CACHE, CLEANUP => 1);
    my @include = $mirror =~ /^https:/ ? ('--include=ca-certificates') : ();
    # in a mount namespace: whatever debootstrap mounts in the root is gone
    # with it, even if it is killed, so removing the root touches no host
    # file system
    my ($rc, $out) = run('unshare', '--mount', '--propagation', 'private',
                         'debootstrap', '--variant=minbase', @include,
                         $SUITE, "$build/root", $mirror);
    if ($rc) {
        my @tail = split /\n/, $out;
        splice @tail, 0, -15;
        diag(join "\n", @tail);
        BAIL_OUT("debootstrap $SUITE from $mirror failed ($rc)");
    }
    my $r = "$build/root";
    spew("$r/etc/apt/sources.list",
         "deb $mirror $SUITE main\ndeb $mirror $SUITE-updates main\n"
         . ($security ? "deb $security $SUITE-security main\n" : ''));
    spew("$r/etc/apt/apt.conf.d/99vconv-test", host_apt_conf());
    # package scripts start no service here: the test starts nginx itself
    spew("$r/usr/sbin/policy-rc.d", "#!/bin/sh\nexit 101\n");
    chmod 0755, "$r/usr/sbin/policy-rc.d";
    if (@include) {
        # the host's own CAs (a proxy's) for an https mirror
        my @ca = glob('/usr/local/share/ca-certificates/*');
        system('cp', '-r', @ca, "$r/usr/local/share/ca-certificates/") if @ca;
        system('chroot', $r, 'update-ca-certificates') == 0
            or BAIL_OUT('update-ca-certificates in the root failed');
    }
    unlink "$r/var/cache/apt/archives/$_" for map { s{.*/}{}r }
        glob("$r/var/cache/apt/archives/*.deb");
    ($rc, $out) = run('tar', '-C', $r, '--zstd', '-cf', "$IMAGE.tmp", '.');
    BAIL_OUT("cannot write $IMAGE: $out") if $rc;
    rename "$IMAGE.tmp", $IMAGE or BAIL_OUT("rename $IMAGE: $!");
    diag(sprintf 'made the cached root %s in %.0f s', $IMAGE, time - $t0);
} else {
    diag("cached root: $IMAGE");
}

$run = tempdir('run-XXXXXX', DIR => $CACHE);
$root = "$run/root";
make_path($root);
{
    my ($rc, $out) = run('tar', '-C', $root, '--zstd', '-xf', $IMAGE);
    BAIL_OUT("cannot unpack $IMAGE: $out") if $rc;
    system('cp', '-L', '/etc/resolv.conf', "$root/etc/resolv.conf")
        if -f '/etc/resolv.conf';
}

{
    my ($rc, $out) = apt_get('update');
    is($rc, 0, "apt-get update in the root ($mirror)") or diag($out);
    my $t;
    ($rc, $out, $t) = apt_get('install', 'nginx');
    is($rc, 0, 'stock nginx installed from the mirror') or diag($out);
    diag(sprintf 'apt-get install nginx: %.1f s', $t);
}
ok(!-e "$root/etc/nginx/conf.d/vconv.conf"
   && !-e "$root/usr/lib/nginx/modules/ngx_http_vconv_module.so",
   'the root has no vconv before the package');

# ---------------------------------------------------------------- install

system('cp', $deb, "$root/tmp/") == 0 or die "cp $deb: $!";
my $in_root_deb = '/tmp/' . ($deb =~ s{.*/}{}r);
{
    my ($rc, $out, $t) = apt_get('install', $in_root_deb);
    is($rc, 0, "apt-get install $in_root_deb") or diag($out);
    diag(sprintf 'apt-get install of the package, its libav* dependencies '
         . 'from the mirror: %.1f s', $t);
    my ($n) = $out =~ /(\d+) newly installed/;
    my ($get) = $out =~ /^(Need to get .*)$/m;
    diag('... ' . ($n // '?') . ' packages newly installed; '
         . ($get // 'nothing to download'));
}
like(status_of(), qr/^install ok installed 0\.\d/, 'package installed');

ok(-f "$root/usr/lib/nginx/modules/ngx_http_vconv_module.so",
   'module in /usr/lib/nginx/modules/');
is(readlink("$root/etc/nginx/modules-enabled/50-mod-http-vconv.conf"),
   '/usr/share/nginx/modules-available/mod-http-vconv.conf',
   'enabled: modules-enabled links to its load_module file');
like(slurp("$root/usr/share/nginx/modules-available/mod-http-vconv.conf") // '',
     qr{^load_module modules/ngx_http_vconv_module\.so;$}m,
     '... which loads the module');
{
    my ($rc, $out) = in_root('dpkg-query', '-W', '-f', '${Conffiles}', $PKG);
    like($out, qr{^ /etc/nginx/conf\.d/vconv\.conf [0-9a-f]{32}$}m,
         '/etc/nginx/conf.d/vconv.conf is a conffile');
    like($out, qr{^ /etc/nginx/snippets/vconv\.conf [0-9a-f]{32}$}m,
         '/etc/nginx/snippets/vconv.conf is a conffile');
}
like(slurp("$root/etc/nginx/conf.d/vconv.conf") // '',
     qr{^vconv_store /var/lib/vconv\b}m, 'conf.d/vconv.conf: the store');
like(slurp("$root/etc/nginx/conf.d/vconv.conf") // '', qr{^vconv_zone }m,
     '... and the zone');
ok(-f "$root/usr/share/vconv/html/index.html", 'page in /usr/share/vconv/html');
ok(-f "$root/usr/share/doc/$PKG/README.gz"
   && -f "$root/usr/share/doc/$PKG/copyright",
   'README and copyright in /usr/share/doc');
is(stat_in_root('/var/lib/vconv'), 'www-data:www-data 750',
   '/var/lib/vconv: www-data, 0750');

# ---------------------------------------------------------------- serve

my $port = VconvNginx::free_port();
unlink "$root/etc/nginx/sites-enabled/default";    # it listens on port 80
site($port, 1);
symlink '/etc/nginx/sites-available/vconv-test',
    "$root/etc/nginx/sites-enabled/vconv-test";
{
    my ($rc, $out) = in_root('nginx', '-t', '-q');
    is($rc, 0, 'nginx -t with a server that includes snippets/vconv.conf')
        or diag($out);
}
ok(start_nginx($port), "the root's nginx runs on 127.0.0.1:$port");

my $clip = VconvNginx::make_media($tmp, 'mp4');
my ($id, $job);
{
    my ($code, $body) = http($port, '/vconv/api/jobs?format=mp4&height=120',
                             args => ['--data-binary', "\@$clip",
                                      '-H', 'X-File-Name: clip.mp4']);
    is($code, 202, 'POST /vconv/api/jobs: 202') or diag($body);
    $id = (eval { $JSON->decode($body) } // {})->{id} // '';
    like($id, qr/^[\w-]+$/, '... with the job id');
    $job = VconvNginx::poll(60, sub {
        my ($c, $b) = http($port, "/vconv/api/jobs/$id");
        my $j = $c == 200 ? eval { $JSON->decode($b) } : undef;
        return $j && $VconvNginx::FINAL{ $j->{status} // '' } ? $j : undef;
    }, 0.2) // {};
    is($job->{status}, 'done', 'the job is done') or diag(explain($job));
    ($code) = http($port, "/vconv/api/jobs/$id/output", out => "$tmp/out.mp4");
    is($code, 200, 'output downloaded');
    my $p = VconvNginx::probe("$tmp/out.mp4");
    my $v = $p && $p->{video} || {};
    is(sprintf('%s %sx%s', map { $_ // '?' } @$v{qw(codec_name width height)}),
       'h264 160x120',
       'ffprobe: the output is the clip, 160x120 H.264');
}
{
    my ($code, $body) = http($port, '/vconv/');
    is($code, 200, 'GET /vconv/: the page');
    like($body, qr/<script type="module" src="app\.js">/, '... its HTML');
    ($code) = http($port, '/vconv/app.js');
    is($code, 200, '... and its script');
    ($code, $body) = http($port, '/vconv/api/presets');
    ok($code == 200 && eval { $JSON->decode($body) },
       'GET /vconv/api/presets: JSON');
}
my @store = glob("$root/var/lib/vconv/*");
ok(@store, 'the job is in /var/lib/vconv')
    or diag(`ls -laR $root/var/lib/vconv`);

# ---------------------------------------------------------------- upgrade

# the same package with a higher version: a real upgrade (old prerm, new
# preinst/postinst with the old version)
my $version = `dpkg-deb -f '$deb' Version`;
chomp $version;
my $bumped = "$tmp/${PKG}_$version+up1.deb";
{
    my $x = "$tmp/bump";
    system('dpkg-deb', '-R', $deb, $x) == 0 or die 'dpkg-deb -R failed';
    my $control = slurp("$x/DEBIAN/control");
    $control =~ s/^Version: .*$/Version: $version+up1/m;
    spew("$x/DEBIAN/control", $control);
    my ($rc, $out) = run('dpkg-deb', '--root-owner-group', '-b', $x, $bumped);
    die "dpkg-deb -b: $out" if $rc;
    system('cp', $bumped, "$root/tmp/") == 0 or die "cp $bumped: $!";
}
{
    my ($rc, $out, $t) = apt_get('install', '/tmp/' . ($bumped =~ s{.*/}{}r));
    is($rc, 0, "upgrade to $version+up1") or diag($out);
    diag(sprintf 'apt-get install of the upgrade: %.1f s', $t);
    unlike($out, qr/Configuration file .* modified/,
           '... asks about no conffile');
}
like(status_of(), qr/^install ok installed \Q$version\E\+up1$/, 'upgraded');
is_deeply([glob("$root/var/lib/vconv/*")], \@store, 'the store kept its job');
is(stat_in_root('/var/lib/vconv'), 'www-data:www-data 750',
   '... still www-data, 0750');
stop_nginx();
ok(start_nginx($port), 'nginx restarted on the upgraded module');
{
    my ($code, $body) = http($port, "/vconv/api/jobs/$id");
    my $j = eval { $JSON->decode($body) } // {};
    is("$code " . ($j->{status} // ''), '200 done',
       'the finished job is there after the upgrade');
    ($code) = http($port, "/vconv/api/jobs/$id/output",
                    out => "$tmp/again.mp4");
    is($code, 200, '... with its output');
    is(-s "$tmp/again.mp4", -s "$tmp/out.mp4", '... the same bytes');
}

# ---------------------------------------------------------------- remove

{
    my ($rc, $out) = apt_get('remove', $PKG);
    is($rc, 0, 'apt-get remove') or diag($out);
    like($out, qr{remove 'include snippets/vconv\.conf;'},
         '... warns that a server still includes the snippet');
}
site($port, 0);    # as the warning says
ok(!-e "$root/etc/nginx/modules-enabled/50-mod-http-vconv.conf"
   && !-e "$root/etc/nginx/conf.d/vconv.conf",
   'removed: neither the module nor its http settings are read');
ok(-d "$root/var/lib/vconv", '... the store stays until purge');
{
    my ($rc, $out) = in_root('nginx', '-t', '-q');
    is($rc, 0, 'nginx -t after remove') or diag($out);
}
stop_nginx();
ok(start_nginx($port) && (http($port, '/health'))[0] == 204,
   'nginx starts and answers after remove');

# install again over the kept configuration
{
    my ($rc, $out) = apt_get('install', '/tmp/' . ($bumped =~ s{.*/}{}r));
    is($rc, 0, 'installed again after remove') or diag($out);
}
ok(-l "$root/etc/nginx/modules-enabled/50-mod-http-vconv.conf"
   && -f "$root/etc/nginx/conf.d/vconv.conf",
   '... enabled again, with its http settings back');
site($port, 1);
stop_nginx();
ok(start_nginx($port), 'nginx starts with the snippet again');
{
    my ($code, $body) = http($port, "/vconv/api/jobs/$id");
    my $j = eval { $JSON->decode($body) } // {};
    is("$code " . ($j->{status} // ''), '200 done',
       '... and still has the finished job');
}

# ---------------------------------------------------------------- purge

site($port, 0);    # the operator's part: the include goes first
{
    my ($rc, $out) = apt_get('purge', $PKG);
    is($rc, 0, 'apt-get purge') or diag($out);
}
is(status_of(), 'not installed', 'purged: dpkg no longer knows it')
    or diag(status_of());
ok(!-e "$root/var/lib/vconv", 'the store is gone');
ok(!-e "$root/etc/nginx/conf.d/vconv.conf"
   && !-e "$root/etc/nginx/conf.d/vconv.conf.removed"
   && !-e "$root/etc/nginx/snippets/vconv.conf",
   'its configuration is gone');
ok(!-e "$root/etc/nginx/modules-enabled/50-mod-http-vconv.conf"
   && !-e "$root/etc/nginx/modules-enabled/50-mod-http-vconv.conf.removed",
   'its modules-enabled link is gone');
ok(!-e "$root/usr/lib/nginx/modules/ngx_http_vconv_module.so"
   && !-e "$root/usr/share/vconv", 'the module and the page are gone');
{
    my ($rc, $out) = in_root('nginx', '-t', '-q');
    is($rc, 0, 'nginx -t after purge') or diag($out);
}
stop_nginx();
ok(start_nginx($port), 'nginx starts after purge');
is((http($port, '/health'))[0], 204, '... and answers');
is((http($port, '/vconv/'))[0], 404, '... without the page');
stop_nginx();
