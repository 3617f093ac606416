#!/usr/bin/perl
# vconv_isolation process (the default): each transcode runs in a child
# of the worker's sandbox helper, confined by seccomp and rlimits.  A
# child that crashes, aborts (the libmp3lame repro files) or runs out of
# vconv_job_memory fails its own job; the worker and its other jobs carry
# on.  Cancel kills the child at once; nothing is left after -s quit; a
# missing helper stops nginx -t; no upload location, no helper.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use Test::More;
use Time::HiRes qw(time sleep);
use VconvNginx;
use VconvMedia ();
use VconvHostile qw(:all);

my $dir = tempdir('vconv-sb-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $J = VconvNginx->json;
my $build = $ENV{VCONV_BUILD} || "$FindBin::Bin/../build";
my $repro = "$FindBin::Bin/../../shared/repro";
$repro = '/work/shared/repro' unless -d $repro;

# crashes of children are the point here, not of workers; the harness's
# own check still stops the file if a worker dies
my $long = "$dir/long1080.mp4";
ff('-f', 'lavfi', '-i', 'testsrc2=size=1920x1080:rate=25:duration=10',
   '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', $long);
my $small = VconvMedia::make_media($dir, 'mp4', size => '160x120',
                                   duration => 1, name => 'small.mp4');

sub comm {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/comm" or return '';
    my $c = <$fh> // '';
    chomp $c;
    return $c;
}

sub state_of {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/stat" or return '';
    my $st = <$fh> // '';
    return $st =~ /^\d+ \(.*\) (\S)/s ? $1 : '';
}

sub kids { @{ VconvNginx::_children($_[0]) } }

sub helpers {
    my ($ng) = @_;
    return map { my $w = $_; grep { comm($_) eq 'vconv-sandbox' } kids($w) }
           @{ $ng->worker_pids };
}

# a helper's children that run jobs; its spare (forked ahead for the
# next job) is named vconv-warmup, then vconv-spare once ready for it
sub job_children {
    my ($ng) = @_;
    return grep { state_of($_) ne 'Z'
                  && comm($_) !~ /^vconv-(?:spare|warmup)$/ }
           map { kids($_) } helpers($ng);
}

sub spares {
    my ($ng) = @_;
    return grep { state_of($_) ne 'Z' && comm($_) eq 'vconv-spare' }
           map { kids($_) } helpers($ng);
}

# every live process whose command line names this instance's prefix
sub leftovers {
    my ($prefix) = @_;
    my @left;
    opendir my $d, '/proc' or return ();
    for my $p (grep { /^\d+$/ } readdir $d) {
        open my $fh, '<', "/proc/$p/cmdline" or next;
        my $cmd = do { local $/; <$fh> } // '';
        next unless index($cmd, $prefix) >= 0;
        next if state_of($p) eq 'Z';
        push @left, $p if comm($p) =~ /^vconv-(?:sandbox|spare|warmup)$/;
    }
    return @left;
}

sub status_field {
    my ($pid, $key) = @_;
    open my $fh, '<', "/proc/$pid/status" or return undef;
    while (<$fh>) {
        return $1 if /^\Q$key\E:\s+(\S+)/;
    }
    return undef;
}

sub start_long {
    my ($ng, $query) = @_;
    my $r = $ng->post_file("/api/jobs?$query", $long, name => 'long.mp4');
    my $id = $r->{json} ? $r->{json}{id} : undef;
    my @child;
    VconvNginx::poll(20, sub {
        my $j = $ng->get("/api/jobs/$id")->{json} // {};
        @child = job_children($ng);
        ($j->{status} // '') eq 'running' && @child;
    }, 0.05) if $id;
    return ($id, $child[0]);
}

# ------------------------------------------------------------ the filter
{
    my $out = `'$build/vconv-sandbox' --selftest 2>&1`;
    is($?, 0, 'vconv-sandbox --selftest: the confined child is refused '
              . 'what it must be') or diag($out);
    for my $what ('open /etc/passwd', 'openat /etc/hostname', 'openat2',
                  'creat', 'stat /etc/passwd', 'socket AF_INET',
                  'socket AF_UNIX', 'connect',
                  'fork', 'vfork', 'clone \(process\)', 'execve', 'ptrace')
    {
        like($out, qr/^ok $what.* refused: Operation not permitted$/m,
             "... $what gets EPERM");
    }
    like($out, qr/^ok clone3 refused: Function not implemented$/m,
         '... clone3 gets ENOSYS (glibc falls back to clone for threads)');
    like($out, qr/^ok a thread starts$/m, '... threads still start');
}

# --------------------------------------------------------- a live child
my $ng = VconvNginx->new(workers => 2,
                         http => "vconv_quarantine $dir/quarantine;")
         ->start;
my @workers = @{ $ng->worker_pids };

my @h = helpers($ng);
is(scalar @h, 2, 'one sandbox helper per worker (' . "@h" . ')');
for my $h (@h) {
    is(status_field($h, 'Threads'), 1, "helper $h is single-threaded");
    my @fds = glob("/proc/$h/fd/*");
    cmp_ok(scalar @fds, '<=', 6, "helper $h holds only its own fds ("
                                  . scalar(@fds) . ')');
}

# ------------------------------------------------------------ the spare
# Each helper forks a spare child ahead of the next job.  It warms its
# heap in an idle-class thread, so on a saturated machine (a loaded CI
# box) it may not be ready for long: then the checks that need it ready
# are skipped, with the reason; that there is one is never skipped.
{
    my (@all, @sp);
    VconvNginx::poll(10, sub {
        @all = grep { state_of($_) ne 'Z'
                      && comm($_) =~ /^vconv-(?:spare|warmup)$/ }
               map { kids($_) } helpers($ng);
        @all == 2 });
    is(scalar @all, 2, "each helper has a spare child (@all)");
    for my $p (@all) {
        # not confined yet (it is, before a byte of its job), and it holds
        # nothing of the helper's: its socket and /proc/self/status
        my @fds = map { readlink($_) // '' } glob("/proc/$p/fd/*");
        my @other = grep { !/^socket:|^\/dev\/null$|^\/proc\/\d+\/status$
                             |(?:stderr|error)\.log$/x } @fds;
        is("@other", '', "spare $p holds no other descriptor (@fds)");
        is(scalar(grep { /^socket:/ } @fds), 1, '... one socket');
    }
    VconvNginx::poll(60, sub { @sp = spares($ng); @sp == 2 });
    SKIP: {
        skip 'no spare ready within 60 s: the CPU was never idle (load '
             . (split ' ', VconvHostile::slurp('/proc/loadavg'))[0]
             . ')', 3 unless @sp == 2;
        my ($id, $child) = start_long($ng, 'format=webm');
        ok($child && grep({ $_ == $child } @sp),
           "the next job runs in a ready spare ($child)");
        is($ng->delete($id)->{status}, 204, '... (that job canceled)');
        my %old = map { $_ => 1 } @sp;
        my $new = VconvNginx::poll(30, sub {
            grep { !$old{$_} } map { kids($_) } helpers($ng) });
        ok($new, '... and once it has ended, a new spare is forked');
    }
}

{
    my ($id, $child) = start_long($ng, 'format=webm');
    ok($child, "a running job has a child (" . ($child // 'none') . ')');
    if ($child) {
        # a child just forked confines itself before it reads a byte
        VconvNginx::poll(3, sub {
            (status_field($child, 'Seccomp') // '') eq '2' });
        is(status_field($child, 'Seccomp'), 2, '... with Seccomp: 2');
        is(status_field($child, 'NoNewPrivs'), 1, '... and NoNewPrivs: 1');
        # the job's input, output and socket, its own status, stdio
        my @fds = map { readlink($_) // '' } glob("/proc/$child/fd/*");
        my @sockets = grep { /^socket:/ } @fds;
        is(scalar @sockets, 1, '... one socket, its job socket');
        my @other = grep { !/^socket:|^\/dev\/null$|\/(?:input|output\.tmp)$
                             |^\/proc\/\d+\/status$|(?:stderr|error)\.log$/x }
                    @fds;
        is("@other", '', '... and no other descriptor (' . "@fds" . ')');
    }

    # cancel kills the child at once
    my $t0 = time;
    is($ng->delete($id)->{status}, 204, 'DELETE of the running job -> 204');
    my $gone = $child && VconvNginx::poll(1, sub {
        !-e "/proc/$child" || state_of($child) eq 'Z' }, 0.02);
    ok($gone, sprintf('... its child is gone within 1 s (%.2f s)',
                      time - $t0));
}

# ------------------------------------------- a worker killed mid-job
{
    my ($id, $child) = start_long($ng, 'format=webm');
    my %owner;
    for my $w (@{ $ng->worker_pids }) {
        for my $h (grep { comm($_) eq 'vconv-sandbox' } kids($w)) {
            $owner{$w} = $h if grep { $_ == ($child // 0) } kids($h);
        }
    }
    my ($victim) = keys %owner;
    ok($victim, 'found the worker whose helper runs the child');
    if ($victim) {
        my $h = $owner{$victim};
        kill 'KILL', $victim;
        my $gone = VconvNginx::poll(2, sub {
            !grep { -e "/proc/$_" && state_of($_) ne 'Z' } $h, $child });
        ok($gone, 'a worker killed mid-job takes its helper and the child');
        VconvNginx::poll(10, sub { @{ $ng->worker_pids } == 2 });
        @workers = @{ $ng->worker_pids };
        is(scalar(helpers($ng)), 2, '... and its successor starts one');
        $ng->wait_job($id, 20);
    }
}

# ------------------------------------------------------------ crashes
for my $sig (qw(SEGV KILL)) {
    my ($id, $child) = start_long($ng, 'format=webm');
    ok($child, "[$sig] the job's child runs");
    kill $sig, $child if $child;
    my $job = $id ? $ng->wait_job($id, 20) : {};
    is($job->{status} // '', 'failed', "[$sig] the job failed");
    is($job->{error}{code} // '', 'converter_crashed',
       "[$sig] ... converter_crashed");
    my $num = $sig eq 'SEGV' ? 11 : 9;
    like($job->{error}{message} // '', qr/signal $num\b/,
         "[$sig] ... the message names the signal");
    is("@{ $ng->worker_pids }", "@workers", "[$sig] same worker pids");
    like($ng->error_log,
         qr/\[error\].*vconv: job \Q$id\E: the converter crashed/,
         "[$sig] an error line with the job id");
    ok(-f "$dir/quarantine/$id", "[$sig] the input is in the quarantine")
        if $id;
    my $r = $ng->post_file('/api/jobs?format=mp4&wait=1', $small,
                           name => 'after.mp4');
    is($r->{status}, 200, "[$sig] the next job converts");
}

like($ng->get('/api/metrics')->{body},
     qr/converter_crashed"?\}? [1-9]/, 'a metric counts the crashes');

# ------------------------------------- libmp3lame aborts on these inputs
SKIP: {
    skip "no $repro", 2 unless -f "$repro/lame-abort.asf";
    for my $f ('lame-abort.asf', 'lame-abort.aac') {
        my @got;
        for my $n (1 .. 3) {
            my $r = $ng->post_file('/api/jobs?format=mp3&audio_bitrate=32k'
                                   . '&wait=1', "$repro/$f", name => $f);
            my $code = $r->{json} && ref $r->{json}{error} eq 'HASH'
                     ? $r->{json}{error}{code} : '';
            push @got, $r->{status} == 200 ? 'file'
                     : $code ? "$r->{status} $code" : "$r->{status} ?";
        }
        ok(!grep({ /\?/ } @got), "$f x3 -> a file or a JSON error (@got)");
    }
    is("@{ $ng->worker_pids }", "@workers",
       '... and the same worker pids after them');
}

# ------------------------------------------------------ -s quit: nothing
{
    my $prefix = $ng->prefix;
    my ($id, $child) = start_long($ng, 'format=webm');
    my @before = leftovers($prefix);
    ok(@before >= 3 && $child, "helpers and a child run before the quit "
                               . "(@before)");
    $ng->stop(quit_timeout => 1);
    my @left;
    my $none = VconvNginx::poll(3, sub { @left = leftovers($prefix); !@left });
    ok($none, "after -s quit no helper or child is left (@left)");
}

# ------------------------------------------- an idle spare is let go
# A spare no job took for vconv_sandbox_spare_idle exits (its warm heap
# is most of an idle worker's memory); the next job is forked for and
# converts, and once it has ended a new spare is made, which goes again.
{
    my $i = VconvNginx->new(workers => 1,
                            http => 'vconv_sandbox_spare_idle 1s;')->start;
    my ($h) = helpers($i);
    my $any = sub {
        grep { state_of($_) ne 'Z'
               && comm($_) =~ /^vconv-(?:spare|warmup)$/ } kids($h) };
    my @first;
    VconvNginx::poll(10, sub { @first = $any->() });
    ok(scalar @first, "vconv_sandbox_spare_idle 1s: a spare is made (@first)");
    my $gone = VconvNginx::poll(20, sub { !$any->() }, 0.1);
    ok($gone, '... and exits once idle');
    sleep 1.5;
    my @none = $any->();
    is("@none", '', '... and no other is made while nothing comes');
    is(scalar(grep { state_of($_) eq 'Z' } kids($h)), 0,
       '... nor left a zombie');
    my $r = $i->post_file('/api/jobs?format=jpg&wait=1', $small,
                          name => 'small.mp4');
    is($r->{status}, 200, '... the next job converts (forked for)');
    my @next;
    VconvNginx::poll(10, sub { @next = $any->() });
    ok(scalar @next, "... a new spare is made after it (@next)");
    # stopped, as a spare still warming up at the idle class on a busy
    # machine: it goes all the same, it does not have to notice
    kill 'STOP', @next;
    $gone = VconvNginx::poll(20, sub { !$any->() }, 0.1);
    ok($gone, '... which goes again when idle, even stopped');
    $r = $i->post_file('/api/jobs?format=jpg&wait=1', $small,
                       name => 'small.mp4');
    is($r->{status}, 200, '... and the job after it converts too');
    is("@{[ helpers($i) ]}", $h, '... by the same helper');
    $i->stop;
}

# vconv_sandbox_idle: a worker with no job for that long lets its helper
# go, and its spare with it: an idle worker holds no sandbox at all.  The
# next job starts a helper again and converts; that helper goes in turn.
{
    my $i = VconvNginx->new(workers => 1,
                            http => 'vconv_sandbox_idle 1s;')->start;
    my ($h) = helpers($i);
    ok($h, 'vconv_sandbox_idle 1s: a helper at the start (' . ($h // '')
           . ')');
    my $live = sub { grep { state_of($_) ne 'Z' } helpers($i) };
    ok(VconvNginx::poll(20, sub { !$live->() }, 0.1),
       '... which goes once idle');
    ok(!grep({ comm($_) =~ /^vconv-/ } map { kids($_) } $h),
       '... its spare with it');
    my $out = "$dir/idle.jpg";
    my $r = $i->post_file('/api/jobs?format=jpg&wait=1', $small,
                          name => 'small.mp4', output => $out);
    is($r->{status}, 200, '... the next job converts (a new helper)');
    my $p = VconvNginx::probe($out);
    is($p && $p->{video} && $p->{video}{codec_name}, 'mjpeg',
       '... into a jpeg');
    ok(VconvNginx::poll(20, sub { !$live->() }, 0.1),
       '... and that helper goes when idle too');
    ok(!grep({ state_of($_) eq 'Z' } helpers($i)), '... reaped');
    $r = $i->post_file('/api/jobs?format=jpg&wait=1', $small,
                       name => 'small.mp4');
    is($r->{status}, 200, '... and the job after it converts');
    like($i->error_log, qr/sandbox helper let go after/,
         '... the letting go is logged');
    # a job that runs longer than the idle time keeps its helper
    my $t0 = time;
    $r = $i->post_file('/api/jobs?format=mp4&height=240&wait=1', $long,
                       name => 'long.mp4', output => "$dir/idle.mp4",
                       max_time => 120);
    is($r->{status}, 200, '... a job longer than vconv_sandbox_idle ('
       . sprintf('%.1f s', time - $t0) . ') converts');
    $p = VconvNginx::probe("$dir/idle.mp4");
    is($p && $p->{video} && "$p->{video}{codec_name} $p->{video}{height}",
       'h264 240', '... into 240 lines of h264');
    $i->assert_clean_log;
    $i->stop;
}

# ------------------------------------------ no spare while slots are full
# While every transcode slot is taken, no worker keeps a spare: its warm
# heap (~45 MB) would only add to the peak of a burst.  Both workers hear
# it, not only the one that runs the job; a still still converts (forked
# for), and once the slot is free again each helper makes a spare.
{
    my $i = VconvNginx->new(workers => 2,
                            http => 'vconv_max_running 1;')->start;
    my @hh;
    VconvNginx::poll(10, sub { @hh = helpers($i); @hh == 2 });
    my $spare_of = sub {
        my ($h) = @_;
        grep { state_of($_) ne 'Z'
               && comm($_) =~ /^vconv-(?:spare|warmup)$/ } kids($h) };
    my $all = sub { map { $spare_of->($_) } @hh };
    ok(VconvNginx::poll(10, sub { $all->() == 2 }),
       'vconv_max_running 1: a spare in each of the 2 helpers ('
       . join(' ', $all->()) . ')');
    my ($id, $child) = start_long($i, 'format=webm');
    ok($child, "a transcode runs ($child)");
    ok(VconvNginx::poll(10, sub { !$all->() }, 0.05),
       '... and neither helper keeps a spare while it has the slot ('
       . join(' ', $all->()) . ')');
    my $still = kill(0, $child) && state_of($child) ne 'Z';
    ok($still, '... the transcode itself runs on');
    my $r = $i->post_file('/api/jobs?format=jpg&wait=1', $small,
                          name => 'small.mp4', output => "$dir/busy.jpg");
    my $p = VconvNginx::probe("$dir/busy.jpg");
    is("$r->{status} " . ($p && $p->{video} ? $p->{video}{codec_name} : ''),
       '200 mjpeg', '... a jpg meanwhile converts (forked for)');
    ok(!$all->(), '... and leaves no spare behind it');
    is($i->delete($id)->{status}, 204, 'the transcode canceled');
    my $back = VconvNginx::poll(30, sub {
        !grep { !$spare_of->($_) } @hh });
    ok($back, '... then each helper makes a spare again ('
              . join(' ', $all->()) . ')');
    $i->assert_clean_log;
    $i->stop;
}

# ------------------------------------------------------ vconv_job_memory
{
    my $m = VconvNginx->new(workers => 1,
                            http => 'vconv_job_memory 128m;')->start;
    my @w = @{ $m->worker_pids };
    my $r = $m->post_file('/api/jobs?format=mp4&height=720', $long,
                          name => 'long.mp4');
    my $job = $r->{json} ? $m->wait_job($r->{json}{id}, 60) : {};
    is($job->{error}{code} // '', 'memory_limit',
       '1080p -> 720p mp4 under vconv_job_memory 128m: memory_limit')
        or diag($J->encode($job));
    is("@{ $m->worker_pids }", "@w", '... the worker lives');
    $r = $m->post_file('/api/jobs?format=jpg&wait=1', $small,
                       name => 'small.mp4');
    is($r->{status}, 200, '... and a smaller job fits in 128m');
    $m->stop;
}

# ------------------------------------------------- thread mode, no helper
{
    my $t = VconvNginx->new(workers => 1,
                            http => 'vconv_isolation thread;')->start;
    is(scalar(helpers($t)), 0, 'vconv_isolation thread: no helper');
    my $r = $t->post_file('/api/jobs?format=mp4&wait=1', $small,
                          name => 'small.mp4');
    is($r->{status}, 200, '... and jobs convert in the thread');
    $t->stop;

    my $conf = $t->default_conf;
    $conf =~ s/vconv_upload;/return 204;/;
    my $n = VconvNginx->new(workers => 1, conf => $conf)->start;
    is(scalar(helpers($n)), 0, 'no vconv_upload location: no helper');
    $n->stop;
}

# ------------------------------------------------------- a missing helper
{
    my $x = VconvNginx->new(workers => 1,
                            http => "vconv_sandbox_helper $dir/nope;");
    my ($ok, $out) = $x->test_conf;
    ok(!$ok, 'nginx -t fails when the helper is missing');
    like($out, qr/sandbox helper "\Q$dir\E\/nope" cannot be run/,
         '... and says which one') or diag($out);

    $x = VconvNginx->new(workers => 1,
                         http => "vconv_sandbox_helper $dir/nope;\n"
                                 . 'vconv_isolation thread;');
    ($ok, $out) = $x->test_conf;
    ok($ok, '... but not with vconv_isolation thread') or diag($out);
}

# ------------------------------------- a helper from another build
# A module and a helper of different builds must not meet as EPROTO on
# every job: the helper's hello names its protocol, the module refuses it
# with an [error] line that says so, and the job fails (500).
{
    my $fake = "$dir/old-helper";
    open my $fh, '>', $fake or die $!;
    print $fh <<'PL';
#!/usr/bin/perl
# the hello of protocol 1, messages of 1234 bytes; then waits for EOF
open(my $s, '+<&=', 3) or exit 1;
send($s, pack('L4', 0x76637362, 1, 1234, $$), 0) or exit 1;
1 while sysread($s, my $buf, 65536);
PL
    close $fh;
    chmod 0755, $fake;

    my $older = "$dir/older-helper";
    open $fh, '>', $older or die $!;
    print $fh "#!/bin/sh\necho 'usage: vconv-sandbox --helper PPID' >&2\n"
              . "exit 2\n";
    close $fh;
    chmod 0755, $older;

    my $other = 'is from another build: it speaks protocol 1 '
              . '\(messages of 1234 bytes\), this module protocol \d+';
    my $gone = "exited at start \\(no hello\\): not the helper of "
             . "this module's";
    for my $case ([$fake, qr/$other/], [$older, qr/$gone/])
    {
        my ($path, $want) = @$case;
        my $x = VconvNginx->new(workers => 1,
                                http => "vconv_sandbox_helper $path;")
                ->start;
        my $r = $x->post_file('/api/jobs?format=jpg&wait=1', $small,
                              name => 'small.mp4');
        my $err = $r->{json} && ref $r->{json}{error} eq 'HASH'
                ? $r->{json}{error} : {};
        is("$r->{status} " . ($err->{code} // ''), '500 internal_error',
           "helper $path: the job fails with 500 internal_error");
        like($err->{message} // '', $want, '... and says why');
        like($x->error_log, qr/\[error\].*vconv: job \S+: .*$want/,
             '... in an [error] line with the job id');
        $x->stop;
    }
}

done_testing;
