#!/usr/bin/perl
# The store lives by nginx's process model (issue 9): "nginx -t" and "-T"
# during a job touch nothing in the store; recovery and the sweeper run in
# the cache manager with the workers' user; a zone too small for the jobs
# on disk deletes none of them; a reload to a new zone size during a job
# loses nothing; an unfinished job is marked interrupted only when its
# owner is gone; job files are 0600 and folders 0700 under umask 0; a
# loaded module that no location uses creates nothing.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Copy qw(copy);
use File::Temp qw(tempdir);
use POSIX qw(_exit);
use Test::More;
use Time::HiRes qw(time sleep);
use VconvNginx;

plan skip_all => 'needs root (runs nginx as an operator would, workers as nobody)'
    unless $> == 0;

# a daemonised nginx runs with umask 0: so does this one
umask 0;

my $dir = tempdir('vconv-ps-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $J = VconvNginx->json;
my ($uid, $gid) = (getpwnam('nobody'))[2, 3];

my $webm = "$dir/in.webm";
system('ffmpeg', '-nostdin', '-v', 'error', '-y', '-f', 'lavfi', '-i',
       'testsrc2=size=320x240:rate=25:duration=30', '-f', 'lavfi', '-i',
       'sine=frequency=440:duration=30', '-c:v', 'libvpx', '-deadline',
       'realtime', '-cpu-used', '8', '-b:v', '300k', '-c:a', 'libopus',
       '-shortest', $webm) == 0 or die 'ffmpeg failed';
my $small = VconvNginx::make_media($dir, 'mp4', size => '160x120',
                                   duration => 1);
# the upload takes about 10 s, and the job converts while it arrives
my $rate = int((-s $webm) / 10 / 1024) . 'k';

# workers as nobody, the master as root: like a packaged nginx
sub instance {
    my (%o) = @_;
    my $ng = VconvNginx->new(workers => 2, %o);
    chmod 0755, $ng->prefix;
    my $conf = $ng->default_conf;
    $conf =~ s/^user root root;/user nobody nogroup;/m;
    $ng->{conf} = $conf;
    return $ng;
}

# every file in the store: owner, mode, mtime, inode
sub snapshot {
    my ($root) = @_;
    my %s;
    my @todo = ($root);
    while (my $d = shift @todo) {
        opendir my $dh, $d or next;
        for my $e (grep { !/^\.\.?$/ } readdir $dh) {
            my $p = "$d/$e";
            my @st = lstat $p or next;
            $s{$p} = { uid => $st[4], mode => $st[2] & 07777,
                       mtime => $st[9], ino => $st[1], dir => -d _ };
            push @todo, $p if -d _;
        }
    }
    return \%s;
}

sub job_json {
    my ($ng, $id) = @_;
    open my $fh, '<', $ng->store . "/$id/job.json" or return undef;
    local $/;
    return eval { $J->decode(<$fh>) };
}

sub wait_status {
    my ($ng, $id, $re, $t) = @_;
    return VconvNginx::poll($t // 20, sub {
        my $j = $ng->get("/api/jobs/$id")->{json} // {};
        ($j->{status} // '') =~ $re ? $j->{status} : undef;
    }, 0.2);
}

sub helpers {
    my ($ng) = @_;
    my @h;
    for my $p (@{ VconvNginx::_children($ng->master_pid) }) {
        open my $fh, '<', "/proc/$p/cmdline" or next;
        local $/;
        my $cmd = <$fh> // '';
        push @h, $p if $cmd =~ /cache manager|cache loader/;
    }
    return \@h;
}

sub uid_of {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/status" or return -1;
    while (<$fh>) { return $1 if /^Uid:\s+(\d+)/ }
    return -1;
}


# --- nginx -t and -T during a job; file modes under umask 0 ---------------
my $ng = instance()->start;
my $store = $ng->store;
my $done_id;
{
    # the master starts it after the workers
    my $h = VconvNginx::poll(5, sub { my $h = helpers($ng); @$h ? $h : undef })
            // [];
    is(scalar @$h, 1, 'one helper process: the cache manager');
    is(@$h && uid_of($h->[0]), $uid, '... running as the workers\' user');

    # keep=1: a plain wait=1 job leaves nothing once answered (issue 18)
    my $r = $ng->post_file('/api/jobs?format=mp4&wait=1&keep=1', $small,
                           name => 'small.mp4');
    is($r->{status}, 200, 'a short job is done');
    $done_id = VconvNginx::poll(5, sub { $ng->store_entries->[0] });

    my $up = $ng->post_file('/api/jobs?format=mp4', $webm, name => 'in.webm',
                            async => 1, limit_rate => $rate,
                            max_time => 120);
    my $id = VconvNginx::poll(10, sub {
        (grep { $_ ne ($done_id // '') } @{ $ng->store_entries })[0];
    });
    ok($id, 'the streaming job has a folder');
    $id //= 'none';
    ok(wait_status($ng, $id, qr/^running$/), 'the job is running');
    ok(VconvNginx::poll(10, sub { -e "$store/$id/job.json" }),
       '... and has its job.json');

    my $before = snapshot($store);
    my $jj = job_json($ng, $id) // {};

    for my $flag ('-t', '-T') {
        my $out = `/usr/sbin/nginx $flag -p '@{[$ng->prefix]}/' -c '@{[$ng->prefix]}/nginx.conf' -e '@{[$ng->prefix]}/error.log' 2>&1`;
        is($?, 0, "nginx $flag as root during the job") or diag($out);
    }

    my $after = snapshot($store);
    my @changed;
    for my $p (sort keys %$before) {
        my ($b, $a) = ($before->{$p}, $after->{$p});
        if (!$a) {
            push @changed, "$p removed" unless $p =~ /\.tmp$/ && $p !~ /output\.tmp$/;
            next;
        }
        push @changed, "$p owner $b->{uid} -> $a->{uid}" if $a->{uid} != $b->{uid};
        push @changed, "$p mode" if $a->{mode} != $b->{mode};
        # the running job's own files grow; nothing else may change
        next if $p =~ m{/$id(/(input|output\.tmp))?$};
        push @changed, "$p mtime" if $a->{mtime} != $b->{mtime};
        push @changed, "$p replaced" if $a->{ino} != $b->{ino};
    }
    ok(!@changed, 'nginx -t and -T changed nothing in the store')
        or diag(join "\n", @changed);
    is((job_json($ng, $id) // {})->{status}, $jj->{status},
       '... the job.json says what it said');

    # modes while the job runs: the output's temporary file too
    my $s = snapshot($store);
    my @bad = grep {
        $s->{$_}{uid} != $uid
        || $s->{$_}{mode} != ($s->{$_}{dir} ? 0700 : 0600)
    } grep { m{^\Q$store\E/} } sort keys %$s;
    ok(!@bad, 'during the job: folders 0700, files 0600, owned by nobody')
        or diag(join "\n", map { sprintf '%s %o uid %d', $_, $s->{$_}{mode},
                                 $s->{$_}{uid} } @bad);

    $r = $up->wait(120);
    is($r->{status}, 202, 'the upload is answered');
    my $job = $ng->wait_job($id, 90) // {};
    is($job->{status}, 'done', 'the job ends done')
        or diag($J->encode($job));
    $r = $ng->download($id, "$dir/out.mp4");
    is($r->{status}, 200, 'its output downloads');
    my $p = VconvNginx::probe("$dir/out.mp4");
    ok($p && $p->{video} && $p->{duration} > 25, 'a valid 30 s video');

    $s = snapshot($store);
    @bad = grep {
        $s->{$_}{uid} != $uid
        || $s->{$_}{mode} != ($s->{$_}{dir} ? 0700 : 0600)
    } grep { m{^\Q$store\E/} } sort keys %$s;
    ok(!@bad, 'after it: folders 0700, files 0600 (output, job.json)')
        or diag(join "\n", map { sprintf '%s %o uid %d', $_, $s->{$_}{mode},
                                 $s->{$_}{uid} } @bad);
    my @st = stat $store;
    is($st[4], $uid, 'the store is the workers\' user\'s');

    # --- reload to a new zone size during a job -------------------------
    $up = $ng->post_file('/api/jobs?format=mp4', $webm, name => 're.webm',
                         async => 1, limit_rate => $rate, max_time => 120);
    my %known = map { $_ => 1 } ($done_id // '', $id);
    my $id2 = VconvNginx::poll(10, sub {
        (grep { !$known{$_} } @{ $ng->store_entries })[0];
    }) // 'none';
    ok(wait_status($ng, $id2, qr/^running$/), 'a second job is running');
    $ng->{conf} =~ s/vconv_zone 8m;/vconv_zone 4m;/;
    $ng->reload;
    ok(-e "$store/$id2/input" && -e "$store/$id2/output.tmp",
       'after a reload to a new zone size its files are there');
    is(($ng->get("/api/jobs/$id2")->{json} // {})->{status}, 'running',
       '... and the new workers answer for it: running');
    $r = $up->wait(120);
    is($r->{status}, 202, 'its upload is answered');
    $job = $ng->wait_job($id2, 90) // {};
    is($job->{status}, 'done', 'the job running over the reload ends done')
        or diag($J->encode($job));
    is($ng->download($id2, "$dir/out2.mp4")->{status}, 200,
       '... its output downloads');
    for my $old ($done_id // 'none', $id) {
        is(($ng->get("/api/jobs/$old")->{json} // {})->{status}, 'done',
           "a job done before the reload is still done");
    }
    $ng->assert_clean_log;
    $ng->stop;
}


# --- the owner decides: alive -> left alone, gone -> interrupted ---------
# --- and a zone too small keeps every job ---------------------------------
{
    my $src = "$store/$done_id";
    my $tmpl = job_json($ng, $done_id) // {};
    open my $fh, '<', "$src/job.json" or die $!;
    my $text = do { local $/; <$fh> };
    close $fh;

    my $dead = fork // die;
    _exit(0) unless $dead;
    waitpid $dead, 0;

    my $n = 0;
    my $newid = sub { sprintf '%032x', 0xabc0000 + ++$n };
    my $make = sub {
        my (%f) = @_;
        my $id = $newid->();
        my $t = $text;
        $t =~ s/\Q$done_id\E/$id/g;
        for my $k (keys %f) {
            my $v = $f{$k} =~ /^-?\d+$/ ? $f{$k} : "\"$f{$k}\"";
            $t =~ s/"$k":("[^"]*"|-?[\d.]+)/"$k":$v/ or die "no $k";
        }
        mkdir "$store/$id", 0700 or die $!;
        open my $o, '>', "$store/$id/job.json" or die $!;
        print $o $t;
        close $o;
        copy("$src/output", "$store/$id/output") unless $f{status};
        system('chown', '-R', 'nobody:nogroup', "$store/$id");
        chmod 0600, glob("$store/$id/*");
        # jobs from before the restart; a running job's owner wrote it
        # after it started
        utime time - 600, time - 600, glob("$store/$id/*"), "$store/$id"
            unless ($f{pid} // 0) == $$;
        return $id;
    };

    my @done = map { $make->() } 1 .. 80;
    my $alive = $make->(status => 'running', pid => $$);
    my $gone = $make->(status => 'running', pid => $dead);
    # a pid that a younger process holds now (a reboot, a wrap)
    my $sleeper = fork // die;
    if (!$sleeper) { exec('sleep', '120') or _exit(127) }
    my $reused = $make->(status => 'running', pid => $sleeper);
    my $expired = $make->(expires => int(time) - 10);
    my $orphan = $newid->();
    mkdir "$store/$orphan", 0700;
    chown $uid, $gid, "$store/$orphan";
    utime time - 7200, time - 7200, "$store/$orphan";
    my $young = $newid->();
    mkdir "$store/$young", 0700;
    chown $uid, $gid, "$store/$young";

    # the smallest zone: far fewer than 80 jobs fit
    $ng->{conf} =~ s/vconv_zone \w+;/vconv_zone 64k;/;

    # nginx -t on a stopped server with work for recovery on disk
    my $before = snapshot($store);
    my ($ok, $out) = $ng->test_conf;
    ok($ok, 'nginx -t on the stopped server') or diag($out);
    $out = `/usr/sbin/nginx -T -p '@{[$ng->prefix]}/' -c '@{[$ng->prefix]}/nginx.conf' -e '@{[$ng->prefix]}/error.log' 2>&1`;
    is($?, 0, 'nginx -T too');
    my $after = snapshot($store);
    is_deeply($after, $before,
              '... they removed, marked and loaded nothing in the store');

    $ng->start;

    ok(VconvNginx::poll(10, sub { !-e "$store/$expired" }),
       'recovery removes the expired job');
    ok(VconvNginx::poll(5, sub { !-e "$store/$orphan" }),
       '... and the old folder with no job.json');
    ok(-d "$store/$young", '... not the young one (an upload being set up)');

    my $m = $ng->get('/api/metrics')->{body} // '';
    my ($inzone) = $m =~ /^vconv_jobs_in_zone (\d+)/m;
    cmp_ok($inzone // 999, '<', 80, "the zone holds fewer ($inzone) than the jobs on disk")
        if defined $inzone;

    sleep 3;    # the sweeper's next rounds
    my @lost = grep { !-e "$store/$_/job.json" || !-e "$store/$_/output" } @done;
    ok(!@lost, 'no done job deleted for want of zone room')
        or diag(scalar(@lost) . ' lost');
    my @unanswered = grep {
        (($ng->get("/api/jobs/$_")->{json} // {})->{status} // '') ne 'done'
    } @done;
    ok(!@unanswered, 'every done job answers GET')
        or diag(scalar(@unanswered) . ' unanswered, e.g. ' . $unanswered[0]);
    is($ng->download($done[-1], "$dir/last.mp4")->{status}, 200,
       '... and their outputs download');

    is((job_json($ng, $alive) // {})->{status}, 'running',
       'a job whose owner lives is not marked');
    is(($ng->get("/api/jobs/$alive")->{json} // {})->{status}, 'running',
       '... GET says running');
    my $g = job_json($ng, $gone) // {};
    is($g->{status}, 'failed', 'a job whose owner is gone is marked failed');
    is($g->{error} && $g->{error}{code} // $g->{err_code}, 'interrupted',
       '... interrupted') or diag($J->encode($g));
    $g = job_json($ng, $reused) // {};
    is($g->{status}, 'failed',
       'a job whose pid a younger process holds now is marked failed');
    kill 'KILL', $sleeper;
    waitpid $sleeper, 0;

    # in the zone or only on disk, a done job can be deleted
    my @kept = grep { $ng->delete($_)->{status} != 204 } @done;
    ok(!@kept, 'DELETE removes every done job') or diag(scalar(@kept) . ' kept');
    my @left = grep { -e "$store/$_" } @done;
    ok(!@left, '... their folders are gone') or diag(scalar(@left) . ' left');
    is($ng->get("/api/jobs/$done[0]")->{status}, 404, '... GET -> 404');
    $ng->assert_clean_log;
    $ng->stop;
}


# --- the master dies; the operator starts nginx again ---------------------
# Its workers live on (orphans) with their jobs; the new master cannot
# bind the port, and must not have touched the store before failing.
{
    my $ng = instance()->start;
    my $store = $ng->store;
    my @kids = (@{ $ng->worker_pids }, @{ helpers($ng) });
    my $up = $ng->post_file('/api/jobs?format=mp4', $webm, name => 'o.webm',
                            async => 1, limit_rate => $rate,
                            max_time => 120);
    my $id = VconvNginx::poll(10, sub { $ng->store_entries->[0] }) // 'none';
    ok(wait_status($ng, $id, qr/^running$/), 'a job is running');
    kill 'KILL', $ng->master_pid;
    waitpid $ng->master_pid, 0;
    delete $VconvNginx::LIVE{$ng->master_pid};
    $ng->{pid} = undef;

    my $out = `/usr/sbin/nginx -p '@{[$ng->prefix]}/' -c '@{[$ng->prefix]}/nginx.conf' -e '@{[$ng->prefix]}/error.log' 2>&1`;
    isnt($?, 0, 'a new master cannot start while the orphans hold the port');
    ok(-e "$store/$id/input" && -e "$store/$id/output.tmp",
       '... and left the running job\'s files alone');
    is((job_json($ng, $id) // {})->{status}, 'running',
       '... and did not mark it');
    my $r = $up->wait(120);
    is($r->{status}, 202, 'the orphaned worker answers the upload');
    my $job = $ng->wait_job($id, 90) // {};
    is($job->{status}, 'done', 'the job ends done') or diag($J->encode($job));
    kill 'TERM', @kids;
    VconvNginx::poll(10, sub { !grep { kill 0, $_ } @kids });
}


# --- a loaded module that no location uses costs nothing ------------------
{
    my $bare = VconvNginx->new(workers => 2);
    chmod 0755, $bare->prefix;
    $bare->{conf} = <<'EOF';
load_module %%MODULE%%;
user nobody nogroup;
worker_processes 2;
error_log %%PREFIX%%/error.log info;
pid %%PREFIX%%/nginx.pid;
daemon off;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %%PREFIX%%/tmp/body;
    proxy_temp_path %%PREFIX%%/tmp/proxy;
    fastcgi_temp_path %%PREFIX%%/tmp/fastcgi;
    uwsgi_temp_path %%PREFIX%%/tmp/uwsgi;
    scgi_temp_path %%PREFIX%%/tmp/scgi;
    vconv_max_queue 10;
    server {
        listen 127.0.0.1:%%PORT%%;
        location / { root %%HTML%%; }
        location = /api/presets { vconv_presets; }
    }
}
EOF
    $bare->start;
    is($bare->get('/api/presets')->{status}, 200, 'presets work without a zone');
    ok(!-e $bare->prefix . '/vconv', 'no store folder');
    is(scalar @{ helpers($bare) }, 0, 'no cache manager process');
    for my $w (@{ $bare->worker_pids }) {
        opendir my $d, "/proc/$w/task";
        my $threads = grep { /^\d+$/ } readdir $d;
        is($threads, 1, "worker $w has one thread (no pool)");
        open my $mh, '<', "/proc/$w/maps";
        my $shm = 0;
        while (<$mh>) {
            next unless m{^([0-9a-f]+)-([0-9a-f]+) .*(/dev/zero|SYSV)};
            { no warnings 'portable'; $shm += hex($2) - hex($1); }
        }
        cmp_ok($shm, '<', 1024 * 1024, "worker $w maps no zone ($shm bytes shared)");
    }
    $bare->assert_clean_log;
    $bare->stop;
}

done_testing;
