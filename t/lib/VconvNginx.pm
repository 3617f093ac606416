package VconvNginx;

=head1 NAME

VconvNginx - start Debian's /usr/sbin/nginx with the vconv module for a test

=head1 SYNOPSIS

    use lib 't/lib';
    use VconvNginx;

    my $ng = VconvNginx->new(                 # every option is optional
        http       => 'extra text inside http{}',
        server     => 'extra text inside server{}',
        main       => 'extra main-context text',
        workers    => 2,                      # worker_processes
        store_opts => 'max_size=200k ttl=2s', # after vconv_store STORE
        zone       => '8m',                   # vconv_zone size
        html_root  => '/path/to/html',        # root of location /
        http2      => 1,                      # listen ... http2 (h2c only!)
        listen_opts=> 'reuseport',            # more listen parameters
        conf       => 'full nginx.conf with %%PORT%% %%PREFIX%% %%MODULE%%'
                    . ' %%STORE%% %%HTML%% placeholders',
        crash_check => 0,                     # see below
    )->start;

Crash check: before each request (and after one that got no answer) the
harness reads the new part of error.log; a worker that "exited on signal"
(other than 9 and 15, which come from outside) or an AddressSanitizer
report ends the test file at once with the log lines before it, instead of
letting every later request time out.  Turn it off per instance with
crash_check => 0 (or $ng->{crash_check} = 0) or per request with
no_crash_check => 1, for tests that kill workers on purpose.

    my $r = $ng->post_file('/api/jobs?format=mp4&height=120', $file,
                           name => 'clip.mov');       # X-File-Name
    # $r = { status => 202, headers => {lc name => value}, body => '...',
    #        json => {...} or undef, curl_exit => 0, time => seconds }
    my $job = $ng->wait_job($r->{json}{id}, 30);     # final job JSON
    $ng->download($job->{id}, "$dir/out.mp4");
    $ng->assert_clean_log;                            # a Test::More ok()
    $ng->stop;                                        # also on DESTROY/END

=head1 METHODS

Instance: start stop restart reload port url(path) prefix store error_log
worker_pids master_pid assert_clean_log test_conf (nginx -t on the config,
without starting; returns ($ok, $output)).

HTTP (all through a curl subprocess; every one accepts headers => {..} or
[..], http2 => 1, http1 => 1 (--http1.1), port => N (another port, e.g. a
delay_proxy's), max_time => s, async => 1 (returns an object with
->wait giving the result, and ->kill), limit_rate => '20k'):
  get($path, %o)                  (head => 1 for HEAD, range => '0-99',
                                   output => $file keeps the body in a file)
  post_file($path, $file, %o)     raw body (--data-binary @file); name =>
                                   X-File-Name, chunked => 1, method => 'PUT'
                                   (then curl -T), content_type => ...
  post_multipart($path, file => $f, filename => ..., fields_before => [k,v,..],
                 fields_after => [k,v,..], %o)
  delete($path_or_id, %o)
  wait_job($id, $timeout)          polls GET /api/jobs/{id} until final
  download($id, $dest, %o)         GET /api/jobs/{id}/output into $dest

Class functions: VconvNginx::tls_pair($dir) (a self-signed localhost
certificate and key made there: ($cert, $key)),
VconvNginx::delay_proxy($port, $delay_ms) (tools/
delay_proxy.pl towards 127.0.0.1:$port, each direction held $delay_ms;
returns an object with ->port, stopped by ->stop or when it goes out of
scope), VconvNginx::module_path(), nginx_test($conf_text) ->
($ok, $output), make_media($dir, $kind, %o) (kinds: mp4 wav text slow),
probe($file) (ffprobe JSON with ->{video} ->{audio} ->{duration} added),
free_port(), ts($time) (job JSON time, ISO 8601 or number, to unix
seconds), is_api_error($r, $status, $code, $name) (one ok()),
$ng->store_entries (names in the store, dotfiles aside), poll($timeout, sub { ... }) returns the sub's true value or
undef at the deadline.

Environment: VCONV_BUILD (build dir, default <repo>/build), VCONV_MODULE
(the .so), VCONV_NGINX (default /usr/sbin/nginx), VCONV_KEEP=1 keeps the
temp prefix, VCONV_ISOLATION=thread|process sets vconv_isolation in the
default config (the module's own default is process). When a test file fails, each instance's error.log is copied to
t/artifacts/.

=cut

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname basename);
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(:sys_wait_h _exit);
use Time::HiRes qw(time sleep);

our $ROOT = abs_path(dirname(__FILE__) . '/../..');
our $NGINX = $ENV{VCONV_NGINX} || '/usr/sbin/nginx';
our %LIVE;      # master pid => instance data needed to kill it in END

my $JSON = JSON::PP->new->utf8->allow_nonref->canonical;

for my $sig (qw(INT TERM HUP PIPE)) {
    $SIG{$sig} = sub { die "caught SIG$sig\n" } unless $SIG{$sig};
}


sub module_path {
    return $ENV{VCONV_MODULE} if $ENV{VCONV_MODULE};
    return $ENV{VCONV_ASAN_MODULE} if $ENV{VCONV_ASAN} && $ENV{VCONV_ASAN_MODULE};
    my $build = $ENV{VCONV_BUILD} || "$ROOT/build";
    return "$build/ngx_http_vconv_module.so";
}


sub free_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Proto => 'tcp', Listen => 1, ReuseAddr => 1)
        or die "cannot bind a free port: $!";
    my $port = $s->sockport;
    close $s;
    return $port;
}


sub poll {
    my ($timeout, $code, $step) = @_;
    my $deadline = time + $timeout;
    $step ||= 0.05;
    while (1) {
        my $v = $code->();
        return $v if $v;
        return undef if time > $deadline;
        sleep $step;
    }
}


sub new {
    my ($class, %o) = @_;
    my $self = bless { %o }, $class;
    $self->{workers} //= 2;
    $self->{creator} = $$;
    $self->{module} = module_path();
    $self->{prefix} = tempdir('vconv-ng-XXXXXX', TMPDIR => 1,
                              CLEANUP => !$ENV{VCONV_KEEP});
    $self->{store} = "$self->{prefix}/store";
    $self->{html} = $o{html_root} || "$self->{prefix}/html";
    make_path($self->{store}, $self->{html}, "$self->{prefix}/tmp",
              "$self->{prefix}/logs");
    # a private copy: a `make build` while the test runs rewrites the .so
    # in place, which would crash every worker that has it mapped
    if (-f $self->{module}) {
        require File::Copy;
        my $copy = "$self->{prefix}/ngx_http_vconv_module.so";
        # the sandbox helper goes next to it, where the module looks
        my $helper = dirname($self->{module}) . '/vconv-sandbox';
        my $hcopy = "$self->{prefix}/vconv-sandbox";
        File::Copy::copy($helper, $hcopy) && chmod(0755, $hcopy)
            if -f $helper;
        File::Copy::copy($self->{module}, $copy) && chmod(0755, $copy)
            and $self->{module} = $copy;
    }
    unless ($o{html_root}) {
        open my $fh, '>', "$self->{html}/index.html" or die $!;
        print $fh "<!doctype html><title>vconv test</title>\n";
        close $fh;
    }
    return $self;
}


sub prefix { $_[0]{prefix} }
sub store  { $_[0]{store} }
sub port   { $_[0]{port} }
sub master_pid { $_[0]{pid} }

sub url {
    my ($self, $path) = @_;
    $path //= '/';
    $path = "/$path" unless $path =~ m{^/};
    return "http://127.0.0.1:$self->{port}$path";
}


sub error_log {
    my ($self) = @_;
    my $text = '';
    for my $f ("$self->{prefix}/error.log", "$self->{prefix}/stderr.log") {
        next unless -f $f;
        open my $fh, '<', $f or next;
        local $/;
        $text .= <$fh>;
    }
    return $text;
}


sub default_conf {
    my ($self) = @_;
    my $user = $> == 0 ? "user root root;\n" : '';
    my $listen = '127.0.0.1:%%PORT%%';
    $listen .= ' http2' if $self->{http2};
    $listen .= " $self->{listen_opts}" if $self->{listen_opts};
    my $store_opts = $self->{store_opts} // 'ttl=1h';
    my $main = $self->{main} // '';
    my $zone = $self->{zone} // '8m';
    my $http = $self->{http} // '';
    # VCONV_ISOLATION=thread runs a test file with the in-thread core
    $http = "    vconv_isolation $ENV{VCONV_ISOLATION};\n$http"
        if $ENV{VCONV_ISOLATION} && $http !~ /vconv_isolation/;
    my $server = $self->{server} // '';

    return <<"EOF";
load_module %%MODULE%%;
${user}worker_processes $self->{workers};
error_log %%PREFIX%%/error.log info;
pid %%PREFIX%%/nginx.pid;
daemon off;
$main

events {
    worker_connections 1024;
}

http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log %%PREFIX%%/logs/access.log;
    client_body_temp_path %%PREFIX%%/tmp/body;
    proxy_temp_path %%PREFIX%%/tmp/proxy;
    fastcgi_temp_path %%PREFIX%%/tmp/fastcgi;
    uwsgi_temp_path %%PREFIX%%/tmp/uwsgi;
    scgi_temp_path %%PREFIX%%/tmp/scgi;
    sendfile on;

    vconv_zone $zone;
    vconv_store %%STORE%% $store_opts;
$http

    server {
        listen $listen;
        server_name localhost;

        location / {
            root %%HTML%%;
        }
        location = /api/jobs {
            vconv_upload;
            client_max_body_size 1g;
        }
        location /api/jobs/ {
            vconv_jobs;
        }
        location = /api/presets {
            vconv_presets;
        }
        location = /api/metrics {
            vconv_status;
        }
$server
    }
}
EOF
}


sub _expand {
    my ($self, $text) = @_;
    my %v = (PORT => $self->{port}, PREFIX => $self->{prefix},
             MODULE => $self->{module}, STORE => $self->{store},
             HTML => $self->{html});
    $text =~ s/%%(PORT|PREFIX|MODULE|STORE|HTML)%%/$v{$1}/g;
    return $text;
}


sub _write_conf {
    my ($self) = @_;
    my $conf = $self->_expand($self->{conf} // $self->default_conf);
    open my $fh, '>', "$self->{prefix}/nginx.conf" or die $!;
    print $fh $conf;
    close $fh;
    return $conf;
}


sub _args {
    my ($self) = @_;
    return ('-p', "$self->{prefix}/", '-c', "$self->{prefix}/nginx.conf",
            '-e', "$self->{prefix}/error.log");
}


sub _port_open {
    my ($port) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 1);
    return 0 unless $s;
    close $s;
    return 1;
}


sub start {
    my ($self) = @_;
    die "vconv module not built: $self->{module} missing (run make build)\n"
        unless -f $self->{module} && -s $self->{module};
    die "$NGINX not found\n" unless -x $NGINX;

    for my $attempt (1 .. 4) {
        $self->{port} = free_port() unless $self->{keep_port} && $self->{port};
        $self->_write_conf;
        truncate "$self->{prefix}/error.log", 0 if $attempt > 1;
        my $ok = $self->_launch;
        return $self if $ok;
        my $log = $self->error_log;
        if ($log =~ /Address already in use/ && !$self->{keep_port}) {
            truncate "$self->{prefix}/error.log", 0;
            next;
        }
        my $tail = join "\n", (split /\n/, $log)[-15 .. -1];
        $tail =~ s/^\n+//;
        die "nginx did not start (prefix $self->{prefix}):\n$tail\n";
    }
    die "nginx did not start: no free port after retries\n";
}


# VCONV_ASAN=1: nginx, and only nginx (not curl or perl), loads the ASan
# module with libasan preloaded; reports go to stderr, which is the error
# log, where the crash check finds them.  Leak detection is on in the
# nginx that a test starts (VCONV_ASAN_LEAKS=0 turns it off), with the
# suppressions of t/lsan.supp (each one explained there); off in nginx -t
# and -s, which exit without freeing their cycle by design.
sub _asan_env {
    my ($leaks) = @_;
    return unless $ENV{VCONV_ASAN};
    $ENV{LD_PRELOAD} = `gcc -print-file-name=libasan.so` =~ s/\s+$//r;
    my $on = $leaks && ($ENV{VCONV_ASAN_LEAKS} // 1) ? 1 : 0;
    $ENV{ASAN_OPTIONS} //= "abort_on_error=1:detect_leaks=$on";
    $ENV{LSAN_OPTIONS} //= "suppressions=$ROOT/t/lsan.supp";
}


# Leaks show at exit: a worker that leaks aborts (abort_on_error) after
# its report, which goes to the error log (the master's to stderr.log).
# One failing test per instance that leaked; nothing when it did not.
sub _check_leaks {
    my ($self) = @_;
    return unless $ENV{VCONV_ASAN} && ($ENV{VCONV_ASAN_LEAKS} // 1);
    my $log = '';
    for my $f ("$self->{prefix}/error.log", "$self->{prefix}/stderr.log") {
        open my $fh, '<', $f or next;
        local $/;
        $log .= <$fh> // '';
    }
    return unless $log =~ /LeakSanitizer|SUMMARY: AddressSanitizer/;
    my @l = split /\n/, $log;
    my ($i) = grep { $l[$_] =~ /LeakSanitizer/ } 0 .. $#l;
    $i //= 0;
    my $to = $i + 60 < $#l ? $i + 60 : $#l;
    require Test::More;
    Test::More::ok(0, "LeakSanitizer: no leak in nginx at exit "
                      . "($self->{prefix})");
    Test::More::diag(join "\n", @l[$i .. $to]);
    $self->_save_artifacts(1);
}


# a sanitizer run that silently ran without the sanitizer proves nothing
sub _check_asan {
    my ($self) = @_;
    for my $pid (@{ $self->worker_pids }) {
        open my $fh, '<', "/proc/$pid/maps" or next;
        local $/;
        my $maps = <$fh>;
        die "VCONV_ASAN: worker $pid has no libasan\n"
            unless $maps =~ /libasan/;
    }
}


sub _launch {
    my ($self) = @_;
    my @cmd = ($NGINX, $self->_args);
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$self->{prefix}/stderr.log";
        open STDERR, '>>', "$self->{prefix}/stderr.log";
        setpgrp(0, 0);
        _asan_env(1);
        exec { $cmd[0] } @cmd or _exit(127);
        _exit(127);
    }
    $self->{pid} = $pid;
    $LIVE{$pid} = $self->{prefix};

    my $deadline = time + 10;
    while (time < $deadline) {
        if (waitpid($pid, WNOHANG) == $pid) {
            CORE::delete $LIVE{$pid};
            $self->{pid} = undef;
            return 0;
        }
        if (_port_open($self->{port})) {
            # workers up too (they open the zone and the store)
            my $n = $self->{workers};
            poll(10, sub { scalar(@{ $self->worker_pids }) >= $n });
            $self->_check_asan if $ENV{VCONV_ASAN};
            return 1;
        }
        sleep 0.05;
    }
    $self->_kill_all;
    return 0;
}


sub _children {
    my ($ppid) = @_;
    my @kids;
    opendir my $d, '/proc' or return [];
    for my $p (grep { /^\d+$/ } readdir $d) {
        open my $fh, '<', "/proc/$p/stat" or next;
        my $st = <$fh> // next;
        close $fh;
        # pid (comm) state ppid ...
        if ($st =~ /^\d+ \(.*\) \S+ (\d+)/s && $1 == $ppid) {
            push @kids, $p + 0;
        }
    }
    closedir $d;
    return [sort { $a <=> $b } @kids];
}


sub worker_pids {
    my ($self) = @_;
    return [] unless $self->{pid};
    my @w;
    for my $p (@{ _children($self->{pid}) }) {
        open my $fh, '<', "/proc/$p/cmdline" or next;
        local $/;
        my $cmd = <$fh> // '';
        push @w, $p if $cmd =~ /worker process/;
    }
    return \@w;
}


sub _wait_exit {
    my ($pid, $timeout) = @_;
    my $deadline = time + $timeout;
    while (time < $deadline) {
        my $r = waitpid($pid, WNOHANG);
        return 1 if $r == $pid || $r == -1;
        sleep 0.02;
    }
    return 0;
}


sub _kill_all {
    my ($self) = @_;
    my $pid = $self->{pid} or return;
    my @kids = @{ _children($pid) };
    CORE::kill 'KILL', $pid, @kids;
    _wait_exit($pid, 5);
    CORE::delete $LIVE{$pid};
    $self->{pid} = undef;
}


# graceful (QUIT), then fast (TERM), then KILL, each with a deadline
sub stop {
    my ($self, %o) = @_;
    my $pid = $self->{pid} or return $self;
    my @kids = @{ _children($pid) };
    my $stopped = 0;
    for my $step (['QUIT', $o{quit_timeout} // 5], ['TERM', 5]) {
        CORE::kill $step->[0], $pid;
        if (_wait_exit($pid, $step->[1])) { $stopped = 1; last }
    }
    unless ($stopped) {
        CORE::kill 'KILL', $pid, @{ _children($pid) };
        _wait_exit($pid, 5);
    }
    # workers that outlived a killed master
    my @left = grep { CORE::kill 0, $_ } @kids;
    if (@left) {
        poll(3, sub { !grep { CORE::kill 0, $_ } @left });
        CORE::kill 'KILL', grep { CORE::kill 0, $_ } @left;
    }
    CORE::delete $LIVE{$pid};
    $self->{pid} = undef;
    $self->_check_leaks;
    return $self;
}


sub restart {
    my ($self) = @_;
    $self->stop;
    local $self->{keep_port} = 1;
    return $self->start;
}


sub reload {
    my ($self) = @_;
    my %old = map { $_ => 1 } @{ $self->worker_pids };
    $self->_write_conf;
    local %ENV = %ENV;
    _asan_env();
    my $out = `'$NGINX' @{[ map { "'$_'" } $self->_args ]} -s reload 2>&1`;
    die "nginx -s reload failed: $out" if $?;
    my $n = $self->{workers};
    poll(10, sub { (grep { !$old{$_} } @{ $self->worker_pids }) >= $n })
        or die "no new workers after reload\n";
    poll(5, sub { !grep { $old{$_} } @{ $self->worker_pids } });
    return $self;
}


# nginx -t over this instance's config (not started); returns ($ok, $output)
sub test_conf {
    my ($self) = @_;
    $self->{port} //= free_port();
    $self->_write_conf;
    local %ENV = %ENV;
    _asan_env();
    my $out = `'$NGINX' -t @{[ map { "'$_'" } $self->_args ]} 2>&1`;
    return ($? == 0, $out);
}


# nginx -t over a config text; returns ($ok, $output)
sub nginx_test {
    my ($conf) = @_;
    my $dir = tempdir('vconv-ngt-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    $conf =~ s/%%MODULE%%/module_path()/ge;
    $conf =~ s/%%PREFIX%%/$dir/g;
    open my $fh, '>', "$dir/nginx.conf" or die $!;
    print $fh $conf;
    close $fh;
    local %ENV = %ENV;
    _asan_env();
    my $out = `'$NGINX' -t -p '$dir/' -c '$dir/nginx.conf' -e '$dir/error.log' 2>&1`;
    return ($? == 0, $out);
}


# [crit], [alert], [emerg], crashes and sanitizer reports always fail;
# an [error] line fails unless allow => qr/.../ expects it
sub assert_clean_log {
    my ($self, $name, %o) = @_;
    my $log = $self->error_log;
    my $allow = $o{allow};
    my @bad = grep {
        /\[crit\]|\[alert\]|\[emerg\]|exited on signal|AddressSanitizer|LeakSanitizer/
        || (/\[error\]/ && !($allow && /$allow/))
    } split /\n/, $log;
    require Test::More;
    my $ok = Test::More::ok(!@bad, $name // 'error log has no error/crit/alert/emerg/crash lines');
    Test::More::diag(join "\n", @bad[0 .. ($#bad < 19 ? $#bad : 19)]) if @bad;
    return $ok;
}


sub _save_artifacts {
    my ($self, $force) = @_;
    my $ok = $force ? 0 : eval {
        require Test::Builder;
        Test::Builder->new->is_passing;
    };
    return if !defined $ok || $ok;
    my $dir = "$ROOT/t/artifacts";
    return unless -d $dir;
    my $name = basename($0);
    $name =~ s/\W+/_/g;
    my $dest = "$dir/$name-$self->{port}-error.log";
    if (open my $fh, '>', $dest) {
        print $fh $self->error_log;
        close $fh;
    }
}


sub DESTROY {
    my ($self) = @_;
    local ($?, $@, $!);
    return unless $self->{pid} && $$ == $self->{creator};
    $self->_save_artifacts;
    $self->stop(quit_timeout => 2);
}


END {
    local ($?, $@, $!);
    for my $pid (keys %LIVE) {
        CORE::kill 'TERM', $pid;
        _wait_exit($pid, 3) or do {
            CORE::kill 'KILL', $pid, @{ _children($pid) };
            _wait_exit($pid, 2);
        };
        CORE::delete $LIVE{$pid};
    }
}


# ---------------------------------------------------------------- HTTP

package VconvNginx::Pending;

use POSIX qw(:sys_wait_h);
use Time::HiRes qw(time sleep);

sub wait {
    my ($self, $timeout) = @_;
    return $self->{result} if $self->{result};
    my $deadline = time + ($timeout // 600);
    while (1) {
        my $r = waitpid($self->{pid}, WNOHANG);
        if ($r == $self->{pid} || $r == -1) {
            $self->{exit} = $r == -1 ? 255 : $? >> 8;
            last;
        }
        if (time > $deadline) {
            CORE::kill 'KILL', $self->{pid};
            waitpid($self->{pid}, 0);
            $self->{exit} = 28;
            last;
        }
        sleep 0.02;
    }
    $self->{result} = VconvNginx::_curl_result($self);
    return $self->{result};
}

sub done {
    my ($self) = @_;
    return 1 if $self->{result};
    return waitpid($self->{pid}, WNOHANG) == $self->{pid}
        ? do { $self->{exit} = $? >> 8;
               $self->{result} = VconvNginx::_curl_result($self); 1 }
        : 0;
}

sub kill {
    my ($self) = @_;
    return if $self->{result};
    CORE::kill 'KILL', $self->{pid};
    $self->wait(5);
}

sub DESTROY {
    my ($self) = @_;
    local ($?, $@, $!);
    $self->kill unless $self->{result};
}


package VconvNginx;

my $REQ = 0;

# dies (ending the test file with the log lines around it) once a worker
# has crashed: whatever follows would only time out
sub check_crash {
    my ($self) = @_;
    return if $self->{crash_seen} || !$self->{prefix};
    return if defined $self->{crash_check} && !$self->{crash_check};
    my $f = "$self->{prefix}/error.log";
    my $size = -s $f or return;
    my $off = $self->{log_off} // 0;
    $off = 0 if $off > $size;
    return if $size == $off;
    open my $fh, '<', $f or return;
    seek $fh, $off, 0;
    local $/;
    my $new = <$fh> // '';
    close $fh;
    $self->{log_off} = $size;
    # SIGKILL/SIGTERM come from outside (a test killing a worker on purpose)
    my $crash = qr/exited on signal (?!(?:9|15)\b)\d+|AddressSanitizer/;
    return unless $new =~ $crash;
    $self->{crash_seen} = 1;
    my @l = split /\n/, $self->error_log;
    my ($i) = grep { $l[$_] =~ $crash } 0 .. $#l;
    my $from = $i > 25 ? $i - 25 : 0;
    $self->_save_artifacts(1);
    die "nginx worker crashed; error log:\n"
        . join("\n", map { substr($_, 0, 400) } @l[$from .. $i]) . "\n";
}


sub _curl {
    my ($self, $method, $path, %o) = @_;
    $self->check_crash unless $o{no_crash_check};
    my $n = ++$REQ;
    my $dir = "$self->{prefix}/curl";
    make_path($dir);
    my $base = "$dir/$$-$n";
    my $body_file = $o{output} // "$base.body";
    my @cmd = ('curl', '-sS', '--path-as-is', '-g',
               '--max-time', $o{max_time} // 30,
               '-D', "$base.hdr", '-o', $body_file,
               '-w', '%{http_code}');
    push @cmd, '--http2-prior-knowledge' if $o{http2} // $self->{http2};
    push @cmd, '--limit-rate', $o{limit_rate} if $o{limit_rate};
    push @cmd, '-N' if $o{no_buffer};
    push @cmd, '-r', $o{range} if defined $o{range};

    my $h = $o{headers} // [];
    my @h = ref $h eq 'HASH' ? (map { "$_: $h->{$_}" } sort keys %$h) : @$h;
    push @h, "X-File-Name: $o{name}" if defined $o{name};
    push @h, "Content-Type: $o{content_type}" if defined $o{content_type};
    push @h, 'Transfer-Encoding: chunked' if $o{chunked};
    push @cmd, map { ('-H', $_) } @h;

    if ($o{head}) {
        push @cmd, '-I';
    } elsif ($o{upload}) {                      # curl -T: PUT
        push @cmd, '-T', $o{upload};
        push @cmd, '-X', $method if $method ne 'PUT';
    } elsif (defined $o{data_file}) {
        push @cmd, '--data-binary', "\@$o{data_file}";
        push @cmd, '-X', $method if $method ne 'POST';
    } elsif ($method ne 'GET') {
        push @cmd, '-X', $method;
    }
    push @cmd, '--http1.1' if $o{http1};
    my $url = $self->url($path);
    $url =~ s{^http://127\.0\.0\.1:\d+}{http://127.0.0.1:$o{port}} if $o{port};
    push @cmd, $url;

    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', "$base.code";
        open STDERR, '>', "$base.err";
        exec { $cmd[0] } @cmd or _exit(127);
        _exit(127);
    }
    my $p = bless { ng => $self, pid => $pid, base => $base, body_file => $body_file,
                    keep_body => defined $o{output}, head => $o{head}, t0 => time,
                    cmd => \@cmd }, 'VconvNginx::Pending';
    return $p if $o{async};
    my $r = $p->wait(($o{max_time} // 30) + 10);
    $self->check_crash if !$o{no_crash_check} && $r->{status} == 0;
    return $r;
}


sub _slurp {
    my ($f) = @_;
    open my $fh, '<', $f or return '';
    binmode $fh;
    local $/;
    my $d = <$fh>;
    return $d // '';
}


sub _curl_result {
    my ($p) = @_;
    my $b = $p->{base};
    my %r = (curl_exit => $p->{exit}, time => time - $p->{t0},
             curl_err => _slurp("$b.err"));
    my $code = _slurp("$b.code");
    $r{status} = $code =~ /(\d{3})\s*$/ ? $1 + 0 : 0;
    my $raw = _slurp("$b.hdr");
    my @blocks = grep { m{^HTTP/} } split /\r?\n\r?\n/, $raw;
    my %h;
    my @list;
    if (@blocks) {
        my @lines = split /\r?\n/, $blocks[-1];
        $r{status_line} = shift @lines;
        for (@lines) {
            next unless /^([^:]+):\s*(.*?)\s*$/;
            my ($k, $v) = (lc $1, $2);
            push @list, [$k, $v];
            $h{$k} = exists $h{$k} ? "$h{$k}, $v" : $v;
        }
    }
    $r{headers} = \%h;
    $r{header_list} = \@list;
    if ($p->{head}) {
        unlink $p->{body_file};
        $r{body} = '';
    } elsif ($p->{keep_body}) {
        $r{file} = $p->{body_file};
        $r{body} = '';
    } else {
        $r{body} = _slurp($p->{body_file});
        unlink $p->{body_file};
    }
    unlink "$b.code", "$b.err", "$b.hdr";
    if (($h{'content-type'} // '') =~ /json/ || $r{body} =~ /^\s*[\{\[]/) {
        $r{json} = eval { $JSON->decode($r{body}) };
    }
    return \%r;
}


sub get {
    my ($self, $path, %o) = @_;
    return $self->_curl($o{head} ? 'HEAD' : 'GET', $path, %o);
}

sub head {
    my ($self, $path, %o) = @_;
    return $self->_curl('HEAD', $path, %o, head => 1);
}

sub post_file {
    my ($self, $path, $file, %o) = @_;
    die "no such file: $file" unless -f $file;
    my $method = $o{method} // 'POST';
    return $self->_curl($method, $path, %o, upload => $file)
        if $method eq 'PUT';
    return $self->_curl($method, $path, %o, data_file => $file);
}

sub delete {
    my ($self, $what, %o) = @_;
    my $path = $what =~ m{/} ? $what : "/api/jobs/$what";
    return $self->_curl('DELETE', $path, %o);
}


# multipart/form-data built here so that the order of parts is ours
sub post_multipart {
    my ($self, $path, %o) = @_;
    my $file = $o{file} // die 'post_multipart: file => ... needed';
    my $boundary = '----vconvtest' . int(rand(1e9)) . 'x' . $REQ;
    my $tmp = "$self->{prefix}/curl/mp-$$-" . (++$REQ);
    make_path("$self->{prefix}/curl");
    open my $out, '>', $tmp or die $!;
    binmode $out;
    my $field = sub {
        my ($k, $v) = @_;
        print $out "--$boundary\r\n",
            "Content-Disposition: form-data; name=\"$k\"\r\n\r\n",
            "$v\r\n";
    };
    my @before = @{ $o{fields_before} // [] };
    my @after = @{ $o{fields_after} // [] };
    $field->(splice @before, 0, 2) while @before;
    my $fname = $o{filename} // basename($file);
    print $out "--$boundary\r\n",
        "Content-Disposition: form-data; name=\"", $o{part_name} // 'file',
        "\"; filename=\"$fname\"\r\n",
        "Content-Type: ", $o{part_type} // 'application/octet-stream',
        "\r\n\r\n";
    print $out _slurp($file);
    print $out "\r\n";
    $field->(splice @after, 0, 2) while @after;
    print $out "--$boundary--\r\n";
    close $out;
    my %c = %o;
    CORE::delete @c{qw(file filename fields_before fields_after part_name part_type)};
    my $r = $self->_curl('POST', $path, %c, data_file => $tmp,
        content_type => "multipart/form-data; boundary=$boundary");
    unlink $tmp unless $c{async};
    return $r;
}


our %FINAL = map { $_ => 1 } qw(done failed canceled);

sub wait_job {
    my ($self, $id, $timeout) = @_;
    my $last;
    return undef unless defined $id && length $id;
    poll($timeout // 60, sub {
            my $r = $self->get("/api/jobs/$id", max_time => 10);
        $last = $r->{json} if $r->{status} == 200 && $r->{json};
        return $last && $FINAL{ $last->{status} // '' };
    }, 0.1) or do {
        require Test::More;
        Test::More::diag("job $id not final after ${\($timeout // 60)}s: "
            . ($last ? $JSON->encode($last) : 'no answer'));
    };
    return $last;
}

sub download {
    my ($self, $id, $dest, %o) = @_;
    return $self->get("/api/jobs/$id/output", %o, output => $dest);
}

sub json { $JSON }


# a job JSON time ("2026-11-28T23:27:26Z" or unix seconds) as unix seconds
sub ts {
    my ($v) = @_;
    return undef unless defined $v;
    return $v + 0 if $v =~ /^\d+(\.\d+)?$/;
    if ($v =~ /^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:\.\d+)?(Z|[+-]\d\d:?\d\d)?$/) {
        require Time::Local;
        my $t = Time::Local::timegm($6, $5, $4, $3, $2 - 1, $1);
        if ($7 && $7 ne 'Z') {
            my ($sign, $hh, $mm) = $7 =~ /([+-])(\d\d):?(\d\d)/;
            $t -= ($sign eq '+' ? 1 : -1) * ($hh * 3600 + $mm * 60);
        }
        return $t;
    }
    return undef;
}


# names in the store folder (job folders and whatever else), dotfiles aside
sub store_entries {
    my ($self) = @_;
    opendir my $d, $self->{store} or return [];
    my @e = sort grep { !/^\./ } readdir $d;
    closedir $d;
    return \@e;
}


# one Test::More check: status, JSON {"error":{"code","message"}}, code
# (undef: any code), Content-Type JSON
sub is_api_error {
    my ($r, $status, $code, $name) = @_;
    require Test::More;
    my @why;
    push @why, "status $r->{status}, want $status" if $r->{status} != $status;
    my $e = ref $r->{json} eq 'HASH' ? $r->{json}{error} : undef;
    if (ref $e ne 'HASH') {
        push @why, 'no JSON error object';
    } else {
        push @why, "code '" . ($e->{code} // 'undef') . "', want '$code'"
            if defined $code && ($e->{code} // '') ne $code;
        push @why, 'no code string' unless defined $e->{code} && !ref $e->{code};
        push @why, 'no message' unless defined $e->{message};
    }
    push @why, 'content-type ' . ($r->{headers}{'content-type'} // 'none')
        unless ($r->{headers}{'content-type'} // '') =~ m{application/json};
    my $ok = Test::More::ok(!@why, $name);
    Test::More::diag(join('; ', @why) . "\nbody: " . substr($r->{body}, 0, 300))
        if @why;
    return $ok;
}


# ---------------------------------------------------------------- media

my %MEDIA_CACHE;

sub _run {
    my @cmd = @_;
    my $out = '';
    my $pid = open(my $fh, '-|') // die "fork: $!";
    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT;
        exec { $cmd[0] } @cmd or _exit(127);
        _exit(127);
    }
    local $/;
    $out = <$fh> // '';
    close $fh;
    die "command failed ($?): @cmd\n$out" if $?;
    return $out;
}

# make_media($dir, $kind, %o): mp4 (2 s 320x240 H.264/AAC), wav (2 s
# sine) -- both from VconvMedia when present --, text, slow (320x240 H.264/AAC, $o{duration} s default 20: a job
# of several seconds).  Options: duration, size.  Returns the path.
sub make_media {
    my ($dir, $kind, %o) = @_;
    my $dur = $o{duration};
    my $key = join '|', $dir, $kind, map { "$_=$o{$_}" } sort keys %o;
    return $MEDIA_CACHE{$key} if $MEDIA_CACHE{$key} && -s $MEDIA_CACHE{$key};
    my @ff = ('ffmpeg', '-nostdin', '-v', 'error', '-y');
    my $path;
    # the media engineer's generator when it is there (t/lib/VconvMedia.pm)
    if (($kind eq 'mp4' || $kind eq 'wav')
        && eval { require VconvMedia; VconvMedia->can('make_media') })
    {
        my %m = %o;
        $m{name} = $kind eq 'mp4'
            ? 'clip-' . ($o{size} // '320x240') . '-' . ($dur // 2) . '.mp4'
            : 'tone-' . ($dur // 2) . '.wav';
        $path = VconvMedia::make_media($dir, $kind, %m);
        return $MEDIA_CACHE{$key} = $path if $path && -s $path;
    }
    if ($kind eq 'mp4') {
        $dur //= 2;
        my $size = $o{size} // '320x240';
        $path = "$dir/clip-$size-$dur.mp4";
        _run(@ff, '-f', 'lavfi', '-i',
             "testsrc2=size=$size:rate=25:duration=$dur",
             '-f', 'lavfi', '-i', "sine=frequency=440:sample_rate=44100:duration=$dur",
             '-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p',
             '-c:a', 'aac', '-b:a', '64k', '-shortest', $path);
    } elsif ($kind eq 'slow') {
        $dur //= 20;
        my $size = $o{size} // '320x240';
        $path = "$dir/slow-$size-$dur.mp4";
        _run(@ff, '-f', 'lavfi', '-i',
             "testsrc2=size=$size:rate=25:duration=$dur",
             '-f', 'lavfi', '-i', "sine=frequency=440:sample_rate=44100:duration=$dur",
             '-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p',
             '-c:a', 'aac', '-b:a', '64k', '-shortest', $path);
    } elsif ($kind eq 'wav') {
        $dur //= 2;
        $path = "$dir/tone-$dur.wav";
        _run(@ff, '-f', 'lavfi', '-i',
             "sine=frequency=440:sample_rate=44100:duration=$dur",
             '-c:a', 'pcm_s16le', $path);
    } elsif ($kind eq 'text') {
        $path = "$dir/notes.txt";
        open my $fh, '>', $path or die $!;
        print $fh "This is not a video.\n" x 200;
        close $fh;
    } else {
        die "make_media: unknown kind $kind";
    }
    return $MEDIA_CACHE{$key} = $path;
}


# ffprobe JSON plus: video, audio (first stream of each), duration (s),
# and with count_frames => 1 the video's nb_read_frames
sub probe {
    my ($file, %o) = @_;
    my @cmd = ('ffprobe', '-v', 'error', '-print_format', 'json',
               '-show_format', '-show_streams');
    push @cmd, '-count_frames' if $o{count_frames};
    my $out = eval { _run(@cmd, $file) };
    return undef unless defined $out;
    my $j = eval { JSON::PP->new->decode($out) } or return undef;
    for my $s (@{ $j->{streams} // [] }) {
        $j->{video} //= $s if ($s->{codec_type} // '') eq 'video';
        $j->{audio} //= $s if ($s->{codec_type} // '') eq 'audio';
    }
    $j->{duration} = $j->{format}{duration};
    return $j;
}



# a self-signed certificate and key for localhost in $dir: ($cert, $key)
sub tls_pair {
    my ($dir) = @_;
    my ($cert, $key) = ("$dir/cert.pem", "$dir/key.pem");
    return ($cert, $key) if -s $cert && -s $key;
    system("openssl req -x509 -newkey rsa:2048 -sha256 -days 30 -nodes"
           . " -subj /CN=localhost"
           . " -addext subjectAltName=DNS:localhost,IP:127.0.0.1"
           . " -keyout '$key' -out '$cert' 2>/dev/null") == 0
        or die "openssl could not make a certificate\n";
    return ($cert, $key);
}

# a raw HTTP/1.1 POST of $length body bytes (default: all of $data) of
# which only the first $send are sent: the socket, kept open, for the
# test to send the rest, dribble or wait (a stalled or trickling upload)
sub raw_upload {
    my ($self, $path, $data, $send, %o) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $self->{port}, Proto => 'tcp')
        or die "connect: $!";
    $s->autoflush(1);
    print $s "POST $path HTTP/1.1\r\nHost: localhost\r\n"
        . 'Content-Length: ' . ($o{length} // length($data)) . "\r\n"
        . 'X-File-Name: ' . ($o{name} // 'input') . "\r\n\r\n"
        . substr($data, 0, $send);
    return $s;
}

# conf.example with its paths moved into a test's prefix (as tools/run.sh
# does for `make run`), 2 workers in the foreground, its HTTPS server on a
# free port with a certificate made in $tls_dir: ($conf, $tls_port), the
# conf for new(conf => ...)
sub example_conf {
    my ($tls_dir) = @_;
    open my $fh, '<', "$ROOT/conf.example" or die "conf.example: $!";
    my $conf = do { local $/; <$fh> };
    close $fh;
    my $user = $> == 0 ? "user root root;\n" : '';
    $conf =~ s{/usr/lib/nginx/modules/ngx_http_vconv_module\.so}{%%MODULE%%};
    $conf =~ s{^error_log\s.*?;}{error_log %%PREFIX%%/error.log info;}m;
    $conf =~ s{/var/log/nginx/}{%%PREFIX%%/logs/}g;
    $conf =~ s{/run/nginx\.pid}{%%PREFIX%%/nginx.pid};
    $conf =~ s{/var/lib/vconv}{%%STORE%%}g;
    $conf =~ s{/usr/share/vconv/html}{%%HTML%%}g;
    $conf =~ s{listen 8080;}{listen 127.0.0.1:%%PORT%%;};
    my $tls_port = free_port();
    $conf =~ s{listen 8443 ssl}{listen 127.0.0.1:$tls_port ssl};
    my ($cert, $key) = tls_pair($tls_dir);
    $conf =~ s{(\bssl_certificate\s+)\S+;}{$1$cert;}g;
    $conf =~ s{(\bssl_certificate_key\s+)\S+;}{$1$key;}g;
    $conf =~ s{^worker_processes\s+\S+;}{${user}worker_processes 2;\ndaemon off;}m
        or die "conf.example: no worker_processes line\n";
    my $temp = join '', map { "\n    ${_}_temp_path %%PREFIX%%/tmp/$_;" }
        qw(client_body proxy fastcgi uwsgi scgi);
    $conf =~ s/^http \{/http {$temp/m;
    return ($conf, $tls_port);
}

# ---------------------------------------------------------------- link

# tools/delay_proxy.pl in front of a port: a link with a round trip of
# 2 x $delay_ms; killed when the object goes
sub delay_proxy {
    my ($to, $delay_ms) = @_;
    my $pid = open(my $out, '-|') // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        my @cmd = ('perl', "$ROOT/tools/delay_proxy.pl", '--to',
                   "127.0.0.1:$to", '--delay', $delay_ms // 25,
                   '--max-seconds', 1800);
        exec { $cmd[0] } @cmd or _exit(127);
    }
    my $line = <$out> // '';
    my ($port) = $line =~ /^port (\d+)/ or die "delay_proxy did not start\n";
    return bless { pid => $pid, port => $port, out => $out, creator => $$ },
                 'VconvNginx::Proxy';
}

package VconvNginx::Proxy;

sub port { $_[0]{port} }

sub stop {
    my ($self) = @_;
    return unless $self->{pid} && $$ == $self->{creator};
    kill 'TERM', $self->{pid};
    waitpid $self->{pid}, 0;
    $self->{pid} = undef;
}

sub DESTROY {
    local ($?, $@, $!);
    $_[0]->stop;
}

package VconvNginx;

1;
